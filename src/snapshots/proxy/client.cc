#include "snapshots/proxy/client.h"

#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>
#include <grpcpp/grpcpp.h>

#include "snapshots/proxy/convert.h"

namespace berth::snapshots::proxy {
namespace {

// Sets the headers a containerd client sends for `ctx`.
void SetHeaders(const Context& ctx, grpc::ClientContext* rpc) {
  if (!ctx.ns.empty()) rpc->AddMetadata("containerd-namespace", ctx.ns);
  if (!ctx.lease.empty()) rpc->AddMetadata("containerd-lease", ctx.lease);
}

}  // namespace

struct Snapshotter::Stub {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<api::Snapshots::Stub> stub;
};

std::string GrpcTarget(const std::string& address) {
  if (address.starts_with("unix:")) return address;
  return "unix:" + address;
}

std::unique_ptr<Snapshotter> Snapshotter::Connect(const std::string& name,
                                                  const std::string& address) {
  auto stub = std::make_unique<Stub>();
  stub->channel = grpc::CreateChannel(GrpcTarget(address), grpc::InsecureChannelCredentials());
  stub->stub = api::Snapshots::NewStub(stub->channel);
  return std::unique_ptr<Snapshotter>(new Snapshotter(name, address, std::move(stub)));
}

Snapshotter::Snapshotter(std::string name, std::string address, std::unique_ptr<Stub> stub)
    : name_(std::move(name)), address_(std::move(address)), stub_(std::move(stub)) {}

Snapshotter::~Snapshotter() = default;

Result<snapshots::Info> Snapshotter::Stat(const Context& ctx, const std::string& key) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::StatSnapshotRequest req;
  req.set_snapshotter(name_);
  req.set_key(key);
  api::StatSnapshotResponse resp;
  BERTH_TRY(StatusFromGrpc(stub_->stub->Stat(&rpc, req, &resp)));
  return FromProto(resp.info());
}

Result<snapshots::Info> Snapshotter::Update(const Context& ctx, const snapshots::Info& info,
                                            const std::vector<std::string>& fieldpaths) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::UpdateSnapshotRequest req;
  req.set_snapshotter(name_);
  ToProto(info, req.mutable_info());
  for (const auto& p : fieldpaths) req.mutable_update_mask()->add_paths(p);
  api::UpdateSnapshotResponse resp;
  BERTH_TRY(StatusFromGrpc(stub_->stub->Update(&rpc, req, &resp)));
  return FromProto(resp.info());
}

Result<snapshots::Usage> Snapshotter::Usage(const Context& ctx, const std::string& key) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::UsageRequest req;
  req.set_snapshotter(name_);
  req.set_key(key);
  api::UsageResponse resp;
  BERTH_TRY(StatusFromGrpc(stub_->stub->Usage(&rpc, req, &resp)));
  return snapshots::Usage{.inodes = resp.inodes(), .size = resp.size()};
}

Result<std::vector<mount::Mount>> Snapshotter::Mounts(const Context& ctx, const std::string& key) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::MountsRequest req;
  req.set_snapshotter(name_);
  req.set_key(key);
  api::MountsResponse resp;
  BERTH_TRY(StatusFromGrpc(stub_->stub->Mounts(&rpc, req, &resp)));
  return MountsFromProto(resp.mounts());
}

Result<std::vector<mount::Mount>> Snapshotter::Prepare(const Context& ctx, const std::string& key,
                                                       const std::string& parent,
                                                       const Labels& labels) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::PrepareSnapshotRequest req;
  req.set_snapshotter(name_);
  req.set_key(key);
  req.set_parent(parent);
  req.mutable_labels()->insert(labels.begin(), labels.end());
  api::PrepareSnapshotResponse resp;
  BERTH_TRY(StatusFromGrpc(stub_->stub->Prepare(&rpc, req, &resp)));
  return MountsFromProto(resp.mounts());
}

Result<std::vector<mount::Mount>> Snapshotter::View(const Context& ctx, const std::string& key,
                                                    const std::string& parent,
                                                    const Labels& labels) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::ViewSnapshotRequest req;
  req.set_snapshotter(name_);
  req.set_key(key);
  req.set_parent(parent);
  req.mutable_labels()->insert(labels.begin(), labels.end());
  api::ViewSnapshotResponse resp;
  BERTH_TRY(StatusFromGrpc(stub_->stub->View(&rpc, req, &resp)));
  return MountsFromProto(resp.mounts());
}

Status Snapshotter::Commit(const Context& ctx, const std::string& name, const std::string& key,
                           const Labels& labels) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::CommitSnapshotRequest req;
  req.set_snapshotter(name_);
  req.set_name(name);
  req.set_key(key);
  req.mutable_labels()->insert(labels.begin(), labels.end());
  google::protobuf::Empty resp;
  return StatusFromGrpc(stub_->stub->Commit(&rpc, req, &resp));
}

Status Snapshotter::Remove(const Context& ctx, const std::string& key) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::RemoveSnapshotRequest req;
  req.set_snapshotter(name_);
  req.set_key(key);
  google::protobuf::Empty resp;
  return StatusFromGrpc(stub_->stub->Remove(&rpc, req, &resp));
}

Status Snapshotter::Walk(const Context& ctx,
                         const std::function<Status(const snapshots::Info&)>& fn,
                         const std::vector<std::string>& filters) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::ListSnapshotsRequest req;
  req.set_snapshotter(name_);
  for (const auto& f : filters) req.add_filters(f);
  auto reader = stub_->stub->List(&rpc, req);
  api::ListSnapshotsResponse resp;
  while (reader->Read(&resp)) {
    for (const auto& info : resp.info()) {
      Status st = fn(FromProto(info));
      if (!st) {
        // Stop the stream; the callback's error is the result.
        rpc.TryCancel();
        (void)reader->Finish();
        return st;
      }
    }
  }
  return StatusFromGrpc(reader->Finish());
}

Status Snapshotter::Cleanup(const Context& ctx) {
  grpc::ClientContext rpc;
  SetHeaders(ctx, &rpc);
  api::CleanupRequest req;
  req.set_snapshotter(name_);
  google::protobuf::Empty resp;
  return StatusFromGrpc(stub_->stub->Cleanup(&rpc, req, &resp));
}

}  // namespace berth::snapshots::proxy
