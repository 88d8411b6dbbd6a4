#pragma once
// Serves one snapshots::Snapshotter over containerd's snapshots gRPC API, the way an external
// snapshotter process does (containerd's contrib/snapshotservice): no namespaces of its own, the
// request's `snapshotter` field is ignored. The containerd-namespace / containerd-lease headers,
// when present, are passed to the snapshotter in its Context.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "snapshots/snapshotter.h"

namespace berth::snapshots::proxy {

// The gRPC service; register it on a grpc::ServerBuilder. `snapshotter` must outlive it.
std::unique_ptr<grpc::Service> NewService(std::shared_ptr<snapshots::Snapshotter> snapshotter);

// A gRPC server on a unix socket serving one snapshotter.
class Server {
 public:
  // Listens on `address` (a socket path, or "unix:..."); a stale socket file is replaced.
  static Result<std::unique_ptr<Server>> Start(const std::string& address,
                                               std::shared_ptr<snapshots::Snapshotter> snapshotter);
  ~Server();  // Shutdown()

  // Stops accepting calls, waits for those in flight, removes the socket file.
  void Shutdown();
  const std::string& Address() const { return address_; }

 private:
  Server() = default;
  std::string address_;
  std::string socket_path_;
  std::shared_ptr<snapshots::Snapshotter> snapshotter_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace berth::snapshots::proxy
