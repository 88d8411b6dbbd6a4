#pragma once
// The daemon's ttrpc endpoint (containerd serves it at `<grpc address>.ttrpc`, config
// [ttrpc] address): shims publish their task events here with
// containerd.services.events.ttrpc.v1.Events/Forward(ForwardRequest{envelope}); each envelope
// goes to the exchange's Forward() as is (its timestamp and namespace kept).
//
// One io thread serves every shim connection. Only peers with the daemon's euid/egid are
// admitted (SO_PEERCRED), as containerd does; the socket is 0600.
#include <memory>
#include <string>

#include "common/errdefs.h"
#include "events/exchange.h"

namespace berth::ttrpc {
class Server;
}

namespace berth::services {

// Registers Events/Forward on `server`, forwarding into `exchange` (which must outlive it).
// Errors: InvalidArgument "envelope must be set" / "event must be set on forwarded envelope",
// and ValidateEnvelope()'s.
void RegisterTtrpcEvents(ttrpc::Server& server, events::Exchange& exchange);

class TtrpcEndpoint {
 public:
  // Listens at `address` (parents 0711; a stale socket is replaced, a live one is AlreadyExists)
  // and serves the events service from its own io thread.
  static Result<std::unique_ptr<TtrpcEndpoint>> Start(const std::string& address,
                                                      events::Exchange& exchange);
  // Shutdown().
  ~TtrpcEndpoint();
  TtrpcEndpoint(const TtrpcEndpoint&) = delete;
  TtrpcEndpoint& operator=(const TtrpcEndpoint&) = delete;

  // Stops accepting, closes connections (waiting up to 2 s for in-flight calls), joins the io
  // thread and removes the socket. Idempotent.
  void Shutdown();
  const std::string& Address() const { return address_; }

 private:
  struct Impl;
  TtrpcEndpoint(std::string address, std::unique_ptr<Impl> impl);

  std::string address_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::services
