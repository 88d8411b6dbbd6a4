#include "snapshots/proxy/convert.h"

#include "common/proto_time.h"

namespace berth::snapshots::proxy {
void ToProto(const snapshots::Info& in, api::Info* out) {
  out->set_name(in.name);
  out->set_parent(in.parent);
  out->set_kind(static_cast<api::Kind>(static_cast<int>(in.kind)));
  SetTimestamp(in.created, out->mutable_created_at());
  SetTimestamp(in.updated, out->mutable_updated_at());
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
}

snapshots::Info FromProto(const api::Info& in) {
  snapshots::Info out;
  out.name = in.name();
  out.parent = in.parent();
  // containerd's proxy maps anything but Active and View to Committed.
  switch (in.kind()) {
    case api::ACTIVE:
      out.kind = Kind::kActive;
      break;
    case api::VIEW:
      out.kind = Kind::kView;
      break;
    default:
      out.kind = Kind::kCommitted;
      break;
  }
  out.labels = Labels(in.labels().begin(), in.labels().end());
  out.created = FromProtoTime(in.created_at());
  out.updated = FromProtoTime(in.updated_at());
  return out;
}

grpc::Status StatusToGrpc(const Status& status) {
  if (status) return grpc::Status::OK;
  return {static_cast<grpc::StatusCode>(ErrcToGrpcCode(status.error().Code())),
          status.error().ToString()};
}

Status StatusFromGrpc(const grpc::Status& status) {
  if (status.ok()) return Ok();
  return ErrorFromGrpc(status.error_code(), status.error_message());
}

}  // namespace berth::snapshots::proxy
