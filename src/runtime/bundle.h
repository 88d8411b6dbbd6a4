#pragma once
// A task's bundle: <state>/<ns>/<id> (the shim's cwd: config.json, rootfs/, address, log, ...)
// and its work dir <root>/<ns>/<id>, linked as bundle/work (containerd runtime/v2/bundle.go).
// `state` and `root` here are the runtime plugin's own dirs
// (<state>/io.containerd.runtime.v2.task).
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth::runtime {

class Bundle {
 public:
  // Creates the bundle dir (0700; parents 0711; group-owned by the remapped root gid and 0710
  // when the spec maps gid 0), rootfs/ (0711), the work dir (0711, a leftover one is replaced),
  // the `work` link and config.json (= spec). InvalidArgument for an invalid id or unreadable
  // spec JSON; AlreadyExists when the bundle dir exists. Nothing is left behind on failure.
  static Result<Bundle> Create(const std::string& root, const std::string& state,
                               const std::string& ns, const std::string& id, std::string_view spec);
  // The bundle of an existing task (nothing is checked).
  static Bundle Load(const std::string& state, const std::string& ns, const std::string& id);

  const std::string& Id() const { return id_; }
  const std::string& Namespace() const { return ns_; }
  const std::string& Path() const { return path_; }

  // Unmounts rootfs, then removes the bundle and its work dir, each renamed to ".<name>" first
  // so a crash half way leaves a dot-dir that loading skips. A missing bundle is fine.
  Status Delete() const;

 private:
  Bundle(std::string id, std::string ns, std::string path)
      : id_(std::move(id)), ns_(std::move(ns)), path_(std::move(path)) {}
  std::string id_;
  std::string ns_;
  std::string path_;
};

// Renames `path` to ".<base>" beside it, then removes it recursively. Missing = fine.
Status AtomicDelete(const std::string& path);

}  // namespace berth::runtime
