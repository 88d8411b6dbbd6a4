#include "snapshots/proxy/server.h"

#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>
#include <unistd.h>

#include <cerrno>

#include "snapshots/proxy/client.h"
#include "snapshots/proxy/convert.h"

namespace berth::snapshots::proxy {
namespace {

std::string FirstValue(const grpc::ServerContext* rpc, const char* key) {
  const auto& md = rpc->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

Context ContextOf(const grpc::ServerContext* rpc) {
  return Context{.ns = FirstValue(rpc, "containerd-namespace"),
                 .lease = FirstValue(rpc, "containerd-lease")};
}

template <class Map>
Labels ToLabels(const Map& m) {
  return Labels(m.begin(), m.end());
}

class Service final : public api::Snapshots::Service {
 public:
  explicit Service(std::shared_ptr<snapshots::Snapshotter> sn) : sn_(std::move(sn)) {}

  grpc::Status Prepare(grpc::ServerContext* rpc, const api::PrepareSnapshotRequest* req,
                       api::PrepareSnapshotResponse* resp) override {
    auto mounts = sn_->Prepare(ContextOf(rpc), req->key(), req->parent(), ToLabels(req->labels()));
    if (!mounts) return StatusToGrpc(mounts.error());
    MountsToProto(*mounts, resp->mutable_mounts());
    return grpc::Status::OK;
  }

  grpc::Status View(grpc::ServerContext* rpc, const api::ViewSnapshotRequest* req,
                    api::ViewSnapshotResponse* resp) override {
    auto mounts = sn_->View(ContextOf(rpc), req->key(), req->parent(), ToLabels(req->labels()));
    if (!mounts) return StatusToGrpc(mounts.error());
    MountsToProto(*mounts, resp->mutable_mounts());
    return grpc::Status::OK;
  }

  grpc::Status Mounts(grpc::ServerContext* rpc, const api::MountsRequest* req,
                      api::MountsResponse* resp) override {
    auto mounts = sn_->Mounts(ContextOf(rpc), req->key());
    if (!mounts) return StatusToGrpc(mounts.error());
    MountsToProto(*mounts, resp->mutable_mounts());
    return grpc::Status::OK;
  }

  grpc::Status Commit(grpc::ServerContext* rpc, const api::CommitSnapshotRequest* req,
                      google::protobuf::Empty*) override {
    return StatusToGrpc(
        sn_->Commit(ContextOf(rpc), req->name(), req->key(), ToLabels(req->labels())));
  }

  grpc::Status Remove(grpc::ServerContext* rpc, const api::RemoveSnapshotRequest* req,
                      google::protobuf::Empty*) override {
    return StatusToGrpc(sn_->Remove(ContextOf(rpc), req->key()));
  }

  grpc::Status Stat(grpc::ServerContext* rpc, const api::StatSnapshotRequest* req,
                    api::StatSnapshotResponse* resp) override {
    auto info = sn_->Stat(ContextOf(rpc), req->key());
    if (!info) return StatusToGrpc(info.error());
    ToProto(*info, resp->mutable_info());
    return grpc::Status::OK;
  }

  grpc::Status Update(grpc::ServerContext* rpc, const api::UpdateSnapshotRequest* req,
                      api::UpdateSnapshotResponse* resp) override {
    snapshots::Info in = FromProto(req->info());
    std::vector<std::string> paths(req->update_mask().paths().begin(),
                                   req->update_mask().paths().end());
    auto info = sn_->Update(ContextOf(rpc), in, paths);
    if (!info) return StatusToGrpc(info.error());
    ToProto(*info, resp->mutable_info());
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext* rpc, const api::ListSnapshotsRequest* req,
                    grpc::ServerWriter<api::ListSnapshotsResponse>* writer) override {
    // Batches of 100, as containerd's service sends them.
    constexpr int kBatch = 100;
    std::vector<std::string> filters(req->filters().begin(), req->filters().end());
    api::ListSnapshotsResponse batch;
    Status st = sn_->Walk(
        ContextOf(rpc),
        [&](const snapshots::Info& info) -> Status {
          ToProto(info, batch.add_info());
          if (batch.info_size() >= kBatch) {
            if (!writer->Write(batch)) return Error(Errc::kCanceled, "client went away");
            batch.Clear();
          }
          return Ok();
        },
        filters);
    if (!st) return StatusToGrpc(st);
    if (batch.info_size() > 0 && !writer->Write(batch)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    return grpc::Status::OK;
  }

  grpc::Status Usage(grpc::ServerContext* rpc, const api::UsageRequest* req,
                     api::UsageResponse* resp) override {
    auto usage = sn_->Usage(ContextOf(rpc), req->key());
    if (!usage) return StatusToGrpc(usage.error());
    resp->set_size(usage->size);
    resp->set_inodes(usage->inodes);
    return grpc::Status::OK;
  }

  grpc::Status Cleanup(grpc::ServerContext* rpc, const api::CleanupRequest*,
                       google::protobuf::Empty*) override {
    return StatusToGrpc(sn_->Cleanup(ContextOf(rpc)));
  }

 private:
  std::shared_ptr<snapshots::Snapshotter> sn_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewService(std::shared_ptr<snapshots::Snapshotter> snapshotter) {
  return std::make_unique<Service>(std::move(snapshotter));
}

Result<std::unique_ptr<Server>> Server::Start(const std::string& address,
                                              std::shared_ptr<snapshots::Snapshotter> snapshotter) {
  std::unique_ptr<Server> s(new Server());
  s->address_ = address;
  std::string target = GrpcTarget(address);
  s->socket_path_ = target.substr(target.starts_with("unix://") ? 7 : 5);
  if (::unlink(s->socket_path_.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove stale socket " + s->socket_path_);
  }
  s->snapshotter_ = std::move(snapshotter);
  s->service_ = NewService(s->snapshotter_);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(target, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_) return Unavailable("snapshots proxy server: cannot listen on " + address);
  return s;
}

Server::~Server() { Shutdown(); }

void Server::Shutdown() {
  if (!server_) return;
  server_->Shutdown();
  server_->Wait();
  server_.reset();
  ::unlink(socket_path_.c_str());
}

}  // namespace berth::snapshots::proxy
