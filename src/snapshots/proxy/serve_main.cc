// berth-snapshotter: serves a native or overlayfs snapshotter over the snapshots gRPC API on a
// unix socket, for berthd's [proxy_plugins] (containerd's contrib/snapshotservice example).
//
//   berth-snapshotter SOCKET ROOT [overlayfs|native]
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "snapshots/native/native.h"
#include "snapshots/overlay/overlay.h"
#include "snapshots/proxy/server.h"

namespace {

berth::Result<std::shared_ptr<berth::snapshots::Snapshotter>> Open(const std::string& kind,
                                                                   const std::string& root) {
  if (kind == "overlayfs") {
    BERTH_ASSIGN_OR_RETURN(auto s, berth::snapshots::overlay::Snapshotter::Open(root));
    return std::shared_ptr<berth::snapshots::Snapshotter>(std::move(s));
  }
  if (kind == "native") {
    BERTH_ASSIGN_OR_RETURN(auto s, berth::snapshots::native::Snapshotter::Open(root));
    return std::shared_ptr<berth::snapshots::Snapshotter>(std::move(s));
  }
  return berth::InvalidArgument("unknown snapshotter " + kind);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s SOCKET ROOT [overlayfs|native]\n", argv[0]);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto sn = Open(argc == 4 ? argv[3] : "overlayfs", argv[2]);
  if (!sn) {
    std::fprintf(stderr, "berth-snapshotter: %s\n", sn.error().ToString().c_str());
    return 1;
  }
  auto server = berth::snapshots::proxy::Server::Start(argv[1], *sn);
  if (!server) {
    std::fprintf(stderr, "berth-snapshotter: %s\n", server.error().ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Shutdown();
  return 0;
}
