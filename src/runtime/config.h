#pragma once
// Configuration of the runtime plugin io.containerd.runtime.v2.task:
//
//   [plugins."io.containerd.runtime.v2.task"]
//     platforms = ["linux/amd64"]    # as containerd
//     sched_core = false             # as containerd (accepted, passed as SCHED_CORE=1)
//     [plugins."io.containerd.runtime.v2.task".shims]   # berth's own table
//       "io.containerd.runc.v2" = "containerd-shim-berth-v2"
//       "my-runc" = "/usr/bin/containerd-shim-runc-v2"
//
// `shims` maps a runtime name to the shim binary that serves it: a bare binary name (looked up
// in the daemon's own directory, then $PATH) or an absolute path. Entries are merged over the
// defaults (io.containerd.runc.v2 and io.containerd.berth.v2 -> containerd-shim-berth-v2). A
// runtime name without an entry maps to containerd-shim-<name>-<version> as containerd does.
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "common/errdefs.h"

namespace berth::runtime {

inline constexpr const char* kBerthShim = "containerd-shim-berth-v2";

struct Config {
  std::vector<std::string> platforms = {"linux/amd64"};
  bool sched_core = false;
  // runtime name -> shim binary name or absolute path (defaults included).
  std::map<std::string, std::string> shims = DefaultShims();

  static std::map<std::string, std::string> DefaultShims();
  // InvalidArgument naming the key for a value of the wrong type or an empty shim binary.
  static Result<Config> FromToml(const toml::table& table);
  // The default table body for `berthd config default`.
  static std::string DefaultToml();
};

}  // namespace berth::runtime
