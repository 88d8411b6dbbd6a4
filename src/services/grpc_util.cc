#include "services/grpc_util.h"

#include <limits>

#include "common/identifiers.h"
#include "common/log.h"

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

void SetTimestamp(Timestamp t, google::protobuf::Timestamp* out) {
  int64_t ns = UnixNanos(t);
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    secs -= 1;
  }
  out->set_seconds(secs);
  out->set_nanos(static_cast<int32_t>(frac));
}

Timestamp FromProto(const google::protobuf::Timestamp& ts) {
  // Outside int64 nanoseconds (before 1678, after 2262; Go's zero time 0001-01-01 among them):
  // the zero Timestamp rather than an overflow.
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (ts.seconds() < -kMaxSeconds || ts.seconds() > kMaxSeconds) return Timestamp{};
  return FromUnixNanos(ts.seconds() * 1'000'000'000 + ts.nanos());
}

}  // namespace berth::services
