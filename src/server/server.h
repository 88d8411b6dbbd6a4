#pragma once
// berthd: owns the root lock, the plugin set and the gRPC server on the unix socket.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

#include <memory>

#include "common/fs.h"
#include "plugin/plugin.h"
#include "server/config.h"
#include "server/debug_state.h"
#include "server/h2_guard.h"
#include "services/events_ttrpc.h"

namespace berth::server {

class Server {
 public:
  // Creates root/state, takes the root lock (Unavailable if another berthd holds it), initialises
  // plugins and starts serving on the configured socket.
  static Result<std::unique_ptr<Server>> Start(const Config& config,
                                               const plugin::Registry& registry);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting, finishes in-flight calls (bounded), removes the socket.
  void Shutdown();
  // The state an operator needs when berthd hangs (server/debug_state.h), as text: version,
  // uptime and log level, the gRPC calls in flight with their age, the threads, the tasks, the
  // leases and the config as loaded (secrets such as registry passwords redacted).
  std::string DumpState() const;
  const plugin::Set& Plugins() const { return *plugins_; }

 private:
  Server(Config config, fs::FileLock lock) : config_(std::move(config)), lock_(std::move(lock)) {}

  Config config_;
  fs::FileLock lock_;
  Timestamp started_ = Now();
  std::unique_ptr<CallTracker> calls_ = std::make_unique<CallTracker>();  // outlives grpc_
  std::unique_ptr<plugin::Set> plugins_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<H2Guard> guard_;  // accepts on the socket, relays each client to grpc_
  std::unique_ptr<services::TtrpcEndpoint> ttrpc_;  // shims' events, at config.TtrpcAddress()
  bool stopped_ = false;
};

// Prepares the unix socket path: parent dirs (0711), and a stale socket left by a dead daemon
// removed. FailedPrecondition if a live server answers on it or the path is not a socket.
Status PrepareSocket(const std::string& path);

// The full default config, with every built-in plugin's default table.
std::string DefaultConfigToml(const plugin::Registry& registry);

}  // namespace berth::server
