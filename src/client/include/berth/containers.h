#pragma once
// Containers (containerd's containers service + the Go client's NewContainer options) and the
// OCI runtime spec options that build their spec (containerd's oci package).
#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "berth/cio.h"
#include "berth/errors.h"
#include "berth/images.h"

namespace berth {

class Client;
class Task;

// The OCI runtime spec, as its JSON document (whatever a runtime understands passes through).
using Spec = nlohmann::json;

struct RuntimeInfo {
  std::string name;              // "io.containerd.runc.v2"
  std::string options_type_url;  // runtime options (an Any), "" = none
  std::string options;
};

// A container record (containers.Container).
struct ContainerInfo {
  std::string id;
  std::map<std::string, std::string> labels;
  std::string image;
  RuntimeInfo runtime;
  Spec spec;  // null when the record has none
  std::string snapshotter;
  std::string snapshot_key;
  std::chrono::system_clock::time_point created_at{};
  std::chrono::system_clock::time_point updated_at{};
};

// ---- Spec options ----

// What a spec option may look at: the client, the container being built.
struct SpecContext {
  const Client* client = nullptr;
  const ContainerInfo* container = nullptr;
};
using SpecOpt = std::function<Status(const SpecContext&, Spec&)>;

// oci.WithImageConfig: env (image env, else the default PATH, overridden by what the spec has),
// args = entrypoint + cmd, cwd, and the image's USER resolved in the container's snapshot (read
// through a temporary read-only mount, so the snapshot must exist: use after WithNewSnapshot).
SpecOpt WithImageConfig(const Image& image);
// oci.WithImageConfigArgs: as WithImageConfig, with `args` replacing the image's cmd.
SpecOpt WithImageConfigArgs(const Image& image, std::vector<std::string> args);
SpecOpt WithProcessArgs(std::vector<std::string> args);
SpecOpt WithProcessCwd(std::string cwd);
SpecOpt WithEnv(std::vector<std::string> env);  // "K=V" replaces, "K" unsets
SpecOpt WithTTY();
SpecOpt WithHostname(std::string hostname);
SpecOpt WithUser(std::string user);           // "uid[:gid]" or names resolved in the snapshot
SpecOpt WithHostNamespace(std::string type);  // "network", "pid", ...
SpecOpt WithMemoryLimit(uint64_t bytes);
SpecOpt WithAnnotations(std::map<std::string, std::string> annotations);
SpecOpt WithRootFsReadonly();
struct MountSpec {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};
SpecOpt WithMounts(std::vector<MountSpec> mounts);

// ---- NewContainer options ----

// The container being created; options fill it in order (as the Go client's NewContainerOpts).
struct ContainerBuilder {
  const Client* client = nullptr;
  ContainerInfo info;
  // Snapshots this creation prepared: removed again if it fails.
  std::vector<std::pair<std::string, std::string>> prepared;  // snapshotter, key
};
using NewContainerOpt = std::function<Status(ContainerBuilder&)>;

// The image the container comes from (its name, labels from the image config are not copied).
NewContainerOpt WithImage(const Image& image);
// containerd.WithImageConfigLabels: the image config's labels on the container.
NewContainerOpt WithImageConfigLabels(const Image& image);
// The snapshotter for the snapshot options that follow ("" = the namespace's default).
NewContainerOpt WithSnapshotter(std::string name);
// WithNewSnapshot: unpacks the image if needed and prepares snapshot `key` (writable) on its top
// layer; the container uses it as rootfs.
NewContainerOpt WithNewSnapshot(std::string key, const Image& image);
// WithNewSnapshotView: the same, read-only (a view).
NewContainerOpt WithNewSnapshotView(std::string key, const Image& image);
// WithSnapshot: an existing snapshot.
NewContainerOpt WithSnapshot(std::string key);
// WithRuntime: the runtime name (default io.containerd.runc.v2) and optional options Any.
NewContainerOpt WithRuntime(std::string name, std::string options_type_url = "",
                            std::string options = "");
// WithNewSpec: oci.GenerateSpec (the default Linux spec for the namespace and id) + the options.
NewContainerOpt WithNewSpec(std::vector<SpecOpt> opts);
template <typename... Opts>
NewContainerOpt WithNewSpec(Opts... opts) {
  return WithNewSpec(std::vector<SpecOpt>{SpecOpt(std::move(opts))...});
}
// WithSpec: the given spec + the options.
NewContainerOpt WithSpec(Spec spec, std::vector<SpecOpt> opts = {});
NewContainerOpt WithContainerLabels(std::map<std::string, std::string> labels);

// ---- Container ----

// container.Delete options (e.g. WithSnapshotCleanup).
using DeleteOpt = std::function<Status(const Client&, const ContainerInfo&)>;
// Removes the container's snapshot before its record.
extern const DeleteOpt WithSnapshotCleanup;

struct NewTaskOptions {
  bool no_pivot_root = false;  // runc options no_pivot_root (runc runtimes)
};

class Container {
 public:
  Container(std::shared_ptr<const detail::ClientState> client, ContainerInfo info);

  const std::string& Id() const { return info_.id; }
  // The record as loaded or created (Info(true) re-reads it).
  const ContainerInfo& Cached() const { return info_; }
  Result<ContainerInfo> Info() const;
  Result<Spec> GetSpec() const;
  Result<berth::Image> GetImage() const;
  Result<std::map<std::string, std::string>> Labels() const;
  // Sets the labels (an empty value removes one); returns all labels afterwards.
  Result<std::map<std::string, std::string>> SetLabels(
      const std::map<std::string, std::string>& labels);
  // container.Delete: FailedPrecondition while a task exists.
  Status Delete(std::vector<DeleteOpt> opts = {}) const;
  template <typename... Opts>
  Status Delete(DeleteOpt first, Opts... rest) const {
    return Delete(std::vector<DeleteOpt>{std::move(first), DeleteOpt(std::move(rest))...});
  }

  // container.NewTask: creates the task (the container's init process, not started) with the
  // snapshot's mounts as rootfs and the stdio `io` makes (terminal as its config says).
  Result<berth::Task> NewTask(const cio::Creator& io, NewTaskOptions options = {}) const;
  // container.Task: NotFound "no running task found: ..." when it has none. With `attach` the
  // task's IO is made from the stdio paths it was created with (e.g. cio::AttachStdio()); without
  // it the task's stdio is left alone.
  Result<berth::Task> LoadTask(const cio::Attacher& attach = nullptr) const;

 private:
  std::shared_ptr<const detail::ClientState> client_;
  ContainerInfo info_;
};

}  // namespace berth
