#pragma once
// The service edge: gRPC metadata -> Context, errdefs -> gRPC status. Only services/ sees gRPC.
#include <grpcpp/grpcpp.h>

#include <google/protobuf/timestamp.pb.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/context.h"
#include "common/errdefs.h"
#include "common/proto_time.h"
#include "common/timeutil.h"

namespace berth::services {

inline constexpr const char* kNamespaceHeader = "containerd-namespace";
inline constexpr const char* kLeaseHeader = "containerd-lease";

grpc::Status ToGrpc(const Status& status);
grpc::Status ToGrpc(const Error& error);

// Reads the namespace (validated when present) and lease from the request metadata. A request
// without a namespace gets an empty one: Require() it where containerd requires it.
Result<Context> ContextFrom(const grpc::CallbackServerContext* rpc);
// The context with a namespace required ("namespace is required": FailedPrecondition).
Result<Context> NamespacedContextFrom(const grpc::CallbackServerContext* rpc);

template <class ProtoMap>
std::map<std::string, std::string> ToMap(const ProtoMap& m) {
  return {m.begin(), m.end()};
}

// Runs fn inline and finishes the call with its status. For handlers that do short LMDB reads or
// writes; blocking work goes to the pool (added with the services that need it).
template <class Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* rpc, Fn&& fn) {
  auto* reactor = rpc->DefaultReactor();
  Status status = fn();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Streams a list of messages computed up front, one write in flight; a failed computation
// finishes the call with its error. Deletes itself when gRPC is done with it.
//   auto* w = new QueueWriter<api::ListContentResponse>();
//   PostBlocking([w] { w->Start(ComputeBatches()); });
//   return w;
template <class Msg>
class QueueWriter final : public grpc::ServerWriteReactor<Msg> {
 public:
  void Start(Result<std::vector<Msg>> msgs) {
    if (!msgs) {
      this->Finish(ToGrpc(msgs.error()));
      return;
    }
    msgs_ = std::move(*msgs);
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (i_ >= msgs_.size()) {
      this->Finish(grpc::Status::OK);
      return;
    }
    this->StartWrite(&msgs_[i_++]);
  }
  std::vector<Msg> msgs_;
  size_t i_ = 0;
};

}  // namespace berth::services
