#pragma once
// Conversions between the snapshots API messages and berth's types, shared by the proxy client
// and server (services/ has its own: snapshots/ does not depend on services/).
#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb.h>
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "common/errdefs.h"
#include "common/mount.h"
#include "snapshots/snapshotter.h"

namespace berth::snapshots::proxy {

namespace api = containerd::services::snapshots::v1;

void ToProto(const snapshots::Info& in, api::Info* out);
snapshots::Info FromProto(const api::Info& in);

template <class RepeatedMounts>
void MountsToProto(const std::vector<mount::Mount>& in, RepeatedMounts* out) {
  for (const auto& m : in) {
    auto* o = out->Add();
    o->set_type(m.type);
    o->set_source(m.source);
    o->set_target(m.target);
    for (const auto& opt : m.options) o->add_options(opt);
  }
}

template <class RepeatedMounts>
std::vector<mount::Mount> MountsFromProto(const RepeatedMounts& in) {
  std::vector<mount::Mount> out;
  out.reserve(in.size());
  for (const auto& m : in) {
    out.push_back(mount::Mount{.type = m.type(),
                               .source = m.source(),
                               .target = m.target(),
                               .options = {m.options().begin(), m.options().end()}});
  }
  return out;
}

grpc::Status StatusToGrpc(const Status& status);
Status StatusFromGrpc(const grpc::Status& status);

}  // namespace berth::snapshots::proxy
