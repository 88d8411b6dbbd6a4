#pragma once
// The shim binary's command line and its short-lived actions, as containerd 1.6 runs shims
// (runtime/v2/shim/shim.go, runtime/v2/runc/manager):
//
//   <shim> -namespace NS -address GRPC -publish-binary EXE -id ID [-debug] start
//     cwd = bundle; stdin = runtime options Any. Creates the socket /run/berth/s/<sha256 hex of
//     "GRPC/NS/<group or id>">, writes the bundle's `address`, re-execs itself (listener as fd 3,
//     own process group, oom_score_adj = daemon's + 1), prints unix://<socket>, exits 0.
//   <shim> -namespace NS -address GRPC -id ID -bundle B delete
//     the serving shim is gone: runc delete --force, unmount rootfs, print a DeleteResponse
//     {pid from init.pid, 137, now}.
//   <shim> -namespace NS -id ID -address GRPC [-socket P]
//     serve the task API on fd 3 (or P) until shut down.
#include <string>
#include <vector>

#include "common/errdefs.h"

namespace berth::shim {

inline constexpr const char* kSocketDir = "/run/berth/s";

struct Flags {
  std::string ns;
  std::string id;
  std::string address;         // the daemon's gRPC socket
  std::string publish_binary;  // legacy event publishing (unused: events go over ttrpc)
  std::string bundle;
  std::string socket;
  bool debug = false;
  bool version = false;
  std::string action;  // "start", "delete", or "" (serve)
};

// Parses Go flag-package style arguments (-flag value, -flag=value, --flag, bool flags).
Result<Flags> ParseFlags(const std::vector<std::string>& args);

// The socket path for `group`: <dir>/<sha256 hex of "<address>/<ns>/<group>">.
std::string SocketPath(const std::string& address, const std::string& ns, const std::string& group,
                       const std::string& dir = kSocketDir);
// The parent of runc's --root when the runtime options name none: `<state>/runc` for a bundle at
// `<state>/io.containerd.runtime.v2.task/<ns>/<id>` (the layout both daemons use), so daemons with
// different state directories never share runc's container ids; kDefaultRuncRoot for a bundle
// elsewhere.
std::string RuncRootFor(const std::string& bundle);
// The grouping id: annotation io.containerd.runc.v2.group, else io.kubernetes.cri.sandbox-id,
// else `id` (from the bundle's config.json text).
std::string GroupId(const std::string& config_json, const std::string& id);

// The actions; each returns the process exit code.
int StartShim(const Flags& flags);
int DeleteShim(const Flags& flags);
int Serve(const Flags& flags);

}  // namespace berth::shim
