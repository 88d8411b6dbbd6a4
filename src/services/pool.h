#pragma once
// The daemon's one bounded pool for blocking work (fsync, unpack, GC waits, registry I/O).
// gRPC callback handlers must not block: they post here and finish from the pool.
#include <grpcpp/grpcpp.h>

#include <functional>

#include "common/context.h"
#include "common/errdefs.h"

namespace berth::services {

// Runs fn on the shared pool (4 threads; created on first use, joined at exit).
void PostBlocking(std::function<void()> fn);

grpc::Status ToGrpcStatus(const berth::Status& status);

// Unary handler whose work blocks: the reactor is finished from the pool.
template <class Fn>
grpc::ServerUnaryReactor* OnPool(grpc::CallbackServerContext* rpc, Fn fn) {
  auto* reactor = rpc->DefaultReactor();
  PostBlocking([reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn())); });
  return reactor;
}

}  // namespace berth::services
