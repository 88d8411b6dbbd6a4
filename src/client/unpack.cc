#include "client/unpack.h"

#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "client/remote_stores.h"
#include "common/log.h"
#include "common/timeutil.h"

namespace berth::client {
namespace {

namespace content_api = containerd::services::content::v1;
namespace diff_api = containerd::services::diff::v1;
namespace leases_api = containerd::services::leases::v1;
namespace ns_api = containerd::services::namespaces::v1;

constexpr const char* kDefaultSnapshotterLabel = "containerd.io/defaults/snapshotter";
constexpr const char* kDefaultSnapshotter = "overlayfs";

std::vector<mount::Mount> FromProto(
    const google::protobuf::RepeatedPtrField<containerd::types::Mount>& in) {
  std::vector<mount::Mount> out;
  out.reserve(static_cast<size_t>(in.size()));
  for (const auto& m : in) {
    out.push_back({m.type(), m.source(), m.target(), {m.options().begin(), m.options().end()}});
  }
  return out;
}

void ToProto(const std::vector<mount::Mount>& in,
             google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const auto& m : in) {
    auto* p = out->Add();
    p->set_type(m.type);
    p->set_source(m.source);
    p->set_target(m.target);
    for (const auto& o : m.options) p->add_options(o);
  }
}

OciDescriptor FromProto(const containerd::types::Descriptor& d) {
  OciDescriptor out;
  out.media_type = d.media_type();
  out.digest = d.digest();
  out.size = d.size();
  return out;
}

template <class Map>
void SetLabels(Map* out, const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : labels) (*out)[k] = v;
}

}  // namespace

// ---- Leases ----

Result<std::string> CreateLease(const Session& session, const LeaseSpec& spec) {
  auto stub = leases_api::Leases::NewStub(session.Channel());
  leases_api::CreateRequest req;
  req.set_id(spec.id.empty() ? NewUniqueId() : spec.id);
  SetLabels(req.mutable_labels(), spec.labels);
  if (spec.expire.count() > 0) {
    auto at = std::chrono::system_clock::now() + spec.expire;
    (*req.mutable_labels())["containerd.io/gc.expire"] = FormatRfc3339Local(
        std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count());
  }
  leases_api::CreateResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Create(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return resp.lease().id();
}

Status DeleteLease(const Session& session, const std::string& id, bool sync) {
  auto stub = leases_api::Leases::NewStub(session.Channel());
  leases_api::DeleteRequest req;
  req.set_id(id);
  req.set_sync(sync);
  google::protobuf::Empty resp;
  auto ctx = session.Context();
  if (auto st = stub->Delete(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Result<LeasedSession> WithLease(const Session& session) {
  if (!session.Lease().empty()) return LeasedSession{session, [] {}};
  BERTH_ASSIGN_OR_RETURN(std::string id, CreateLease(session, LeaseSpec{}));
  Session leased = session.WithLease(id);
  return LeasedSession{leased, [leased, id] { (void)DeleteLease(leased, id); }};
}

// ---- Content ----

Result<std::string> ReadContent(const Session& session, const OciDescriptor& desc) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::InfoRequest ireq;
  ireq.set_digest(desc.digest);
  content_api::InfoResponse iresp;
  {
    auto ctx = session.Context();
    if (auto st = stub->Info(ctx.get(), ireq, &iresp); !st.ok()) return FromGrpc(st);
  }
  const int64_t size = iresp.info().size();
  std::string out;
  if (size <= 0) return out;
  out.reserve(static_cast<size_t>(size));
  content_api::ReadContentRequest req;
  req.set_digest(desc.digest);
  req.set_size(size);
  auto ctx = session.Context();
  auto reader = stub->Read(ctx.get(), req);
  content_api::ReadContentResponse resp;
  while (static_cast<int64_t>(out.size()) < size && reader->Read(&resp)) out += resp.data();
  if (static_cast<int64_t>(out.size()) >= size) {
    ctx->TryCancel();
    (void)reader->Finish();
    out.resize(static_cast<size_t>(size));
    return out;
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return FromGrpc(st);
  return Unknown("unexpected EOF");
}

BlobReader ContentReader(const Session& session) {
  return [session](const OciDescriptor& d) { return ReadContent(session, d); };
}

Status CopyContent(const Session& session, const std::string& digest, std::FILE* out) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::InfoRequest ireq;
  ireq.set_digest(digest);
  content_api::InfoResponse iresp;
  {
    auto ctx = session.Context();
    if (auto st = stub->Info(ctx.get(), ireq, &iresp); !st.ok()) return FromGrpc(st);
  }
  const int64_t size = iresp.info().size();
  if (size <= 0) return Ok();
  content_api::ReadContentRequest req;
  req.set_digest(digest);
  req.set_size(size);
  auto ctx = session.Context();
  auto reader = stub->Read(ctx.get(), req);
  content_api::ReadContentResponse resp;
  int64_t copied = 0;
  while (copied < size && reader->Read(&resp)) {
    const std::string& data = resp.data();
    size_t n = std::min(data.size(), static_cast<size_t>(size - copied));
    if (n > 0 && std::fwrite(data.data(), 1, n, out) != n) {
      ctx->TryCancel();
      (void)reader->Finish();
      return ErrnoError(errno, "write /dev/stdout");
    }
    copied += static_cast<int64_t>(n);
  }
  std::fflush(out);
  if (copied >= size) {
    ctx->TryCancel();
    (void)reader->Finish();
    return Ok();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return FromGrpc(st);
  return Unknown("unexpected EOF");
}

Status SetContentLabel(const Session& session, const std::string& digest, const std::string& key,
                       const std::string& value) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::UpdateRequest req;
  req.mutable_info()->set_digest(digest);
  if (!value.empty()) (*req.mutable_info()->mutable_labels())[key] = value;
  req.mutable_update_mask()->add_paths("labels." + key);
  content_api::UpdateResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

// ---- Snapshots ----

SnapshotClient::SnapshotClient(Session session, std::string snapshotter)
    : session_(std::move(session)), snapshotter_(std::move(snapshotter)) {}

Result<snapshots_api::Info> SnapshotClient::Stat(const std::string& key) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::StatSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  snapshots_api::StatSnapshotResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub->Stat(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return resp.info();
}

Result<std::vector<mount::Mount>> SnapshotClient::Prepare(
    const std::string& key, const std::string& parent,
    const std::map<std::string, std::string>& labels) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::PrepareSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  req.set_parent(parent);
  SetLabels(req.mutable_labels(), labels);
  snapshots_api::PrepareSnapshotResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub->Prepare(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return FromProto(resp.mounts());
}

Result<std::vector<mount::Mount>> SnapshotClient::View(
    const std::string& key, const std::string& parent,
    const std::map<std::string, std::string>& labels) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::ViewSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  req.set_parent(parent);
  SetLabels(req.mutable_labels(), labels);
  snapshots_api::ViewSnapshotResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub->View(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return FromProto(resp.mounts());
}

Result<std::vector<mount::Mount>> SnapshotClient::Mounts(const std::string& key) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::MountsRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  snapshots_api::MountsResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub->Mounts(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return FromProto(resp.mounts());
}

Status SnapshotClient::Commit(const std::string& name, const std::string& key,
                              const std::map<std::string, std::string>& labels) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::CommitSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_name(name);
  req.set_key(key);
  SetLabels(req.mutable_labels(), labels);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub->Commit(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Status SnapshotClient::Remove(const std::string& key) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::RemoveSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub->Remove(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Result<SnapshotUsage> SnapshotClient::Usage(const std::string& key) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::UsageRequest req;
  req.set_snapshotter(snapshotter_);
  req.set_key(key);
  snapshots_api::UsageResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub->Usage(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return SnapshotUsage{resp.size(), resp.inodes()};
}

Result<snapshots_api::Info> SnapshotClient::Update(const snapshots_api::Info& info,
                                                   const std::vector<std::string>& paths) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::UpdateSnapshotRequest req;
  req.set_snapshotter(snapshotter_);
  *req.mutable_info() = info;
  for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
  snapshots_api::UpdateSnapshotResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return resp.info();
}

Status SnapshotClient::Walk(const std::function<Status(const snapshots_api::Info&)>& fn,
                            const std::vector<std::string>& filters) const {
  auto stub = snapshots_api::Snapshots::NewStub(session_.Channel());
  snapshots_api::ListSnapshotsRequest req;
  req.set_snapshotter(snapshotter_);
  for (const auto& f : filters) req.add_filters(f);
  auto ctx = session_.Context();
  auto reader = stub->List(ctx.get(), req);
  snapshots_api::ListSnapshotsResponse resp;
  while (reader->Read(&resp)) {
    for (const auto& info : resp.info()) {
      Status s = fn(info);
      if (!s) {
        ctx->TryCancel();
        (void)reader->Finish();
        return s;
      }
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return FromGrpc(st);
  return Ok();
}

Result<std::string> ResolveSnapshotterName(const Session& session, const std::string& name) {
  if (!name.empty()) return name;
  auto stub = ns_api::Namespaces::NewStub(session.Channel());
  ns_api::GetNamespaceRequest req;
  req.set_name(session.Namespace());
  ns_api::GetNamespaceResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Get(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  const auto& labels = resp.namespace_().labels();
  if (auto it = labels.find(kDefaultSnapshotterLabel); it != labels.end() && !it->second.empty()) {
    return it->second;
  }
  return std::string(kDefaultSnapshotter);
}

// ---- Diff ----

Result<OciDescriptor> DiffApply(const Session& session, const OciDescriptor& layer,
                                const std::vector<mount::Mount>& mounts) {
  auto stub = diff_api::Diff::NewStub(session.Channel());
  diff_api::ApplyRequest req;
  req.mutable_diff()->set_media_type(layer.media_type);
  req.mutable_diff()->set_digest(layer.digest);
  req.mutable_diff()->set_size(layer.size);
  ToProto(mounts, req.mutable_mounts());
  diff_api::ApplyResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Apply(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return FromProto(resp.applied());
}

Result<OciDescriptor> DiffCompare(const Session& session, const std::vector<mount::Mount>& lower,
                                  const std::vector<mount::Mount>& upper,
                                  const DiffOptions& options) {
  auto stub = diff_api::Diff::NewStub(session.Channel());
  diff_api::DiffRequest req;
  ToProto(lower, req.mutable_left());
  ToProto(upper, req.mutable_right());
  req.set_media_type(options.media_type);
  req.set_ref(options.ref);
  SetLabels(req.mutable_labels(), options.labels);
  diff_api::DiffResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Diff(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return FromProto(resp.diff());
}

// ---- Unpack ----

Result<UnpackResult> UnpackManifest(const Session& session, const OciManifest& manifest,
                                    const UnpackOptions& options) {
  RemoteStores stores(session);
  return transfer::UnpackManifest(stores, StoresContext(session), manifest, options);
}

Result<UnpackResult> UnpackImage(const Session& session, const OciDescriptor& target,
                                 const PlatformMatcher& platform, const UnpackOptions& options) {
  RemoteStores stores(session);
  return transfer::UnpackImage(stores, StoresContext(session), target, platform, options);
}

}  // namespace berth::client
