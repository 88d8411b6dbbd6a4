#include "services/grpc_util.h"

#include <limits>

#include "common/identifiers.h"
#include "common/log.h"
#include "services/utf8_guard.h"

namespace berth::services {

grpc::Status ToGrpc(const Error& error) {
  return {static_cast<grpc::StatusCode>(ErrcToGrpcCode(error.Code())), error.ToString()};
}

grpc::Status ToGrpc(const Status& status) {
  if (status) return grpc::Status::OK;
  return ToGrpc(status.error());
}

namespace {

std::string FirstValue(const grpc::CallbackServerContext* rpc, const char* key) {
  const auto& md = rpc->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

Result<Context> ContextFrom(const grpc::CallbackServerContext* rpc) {
  // Every handler starts here: a request with invalid UTF-8 is refused before any work.
  if (auto bad = InvalidUtf8Error(rpc)) return std::move(*bad);
  Context ctx;
  ctx.ns = FirstValue(rpc, kNamespaceHeader);
  ctx.lease = FirstValue(rpc, kLeaseHeader);
  if (!ctx.ns.empty()) {
    if (auto s = identifiers::Validate(ctx.ns); !s) {
      return std::move(s).error().Wrap("namespace validation");
    }
  }
  return ctx;
}

Result<Context> NamespacedContextFrom(const grpc::CallbackServerContext* rpc) {
  BERTH_ASSIGN_OR_RETURN(Context ctx, ContextFrom(rpc));
  if (ctx.ns.empty()) {
    return FailedPrecondition("namespace is required");
  }
  return ctx;
}

}  // namespace berth::services
