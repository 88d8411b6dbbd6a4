// client.Push: walk the image record's content, upload what the registry lacks (cross-repo
// mount when a distribution source label names another repository of the same registry),
// manifests after their children, the root last by its tag.
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "client/content.h"
#include "client/transfer.h"
#include "common/reference.h"
#include "transfer/progress.h"

namespace berth::client {
namespace {

using transfer::DistributionSourceKey;
using transfer::IsIndexType;
using transfer::IsManifestType;
using transfer::ProgressTracker;
using transfer::RefKey;
using transfer::SplitDistributionSource;

namespace content_api = containerd::services::content::v1;
namespace images_api = containerd::services::images::v1;
using State = TransferStatus::State;

Result<OciDescriptor> GetImageTarget(const Session& session, const std::string& name) {
  auto stub = images_api::Images::NewStub(session.Channel());
  images_api::GetImageRequest req;
  req.set_name(name);
  images_api::GetImageResponse resp;
  auto ctx = session.Context();
  if (grpc::Status st = stub->Get(ctx.get(), req, &resp); !st.ok()) {
    Error e = FromGrpc(st);
    if (e.Is(Errc::kNotFound)) return NotFound(fmt::format("image {:?}", name));
    return std::move(e).Wrap(fmt::format("get image {:?}", name));
  }
  OciDescriptor d;
  d.media_type = resp.image().target().media_type();
  d.digest = resp.image().target().digest();
  d.size = resp.image().target().size();
  return d;
}

// Content.Read of [offset, offset+len): the pusher's reader.
Result<std::string> ReadAt(const Session& session, const std::string& digest, int64_t offset,
                           size_t len) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::ReadContentRequest req;
  req.set_digest(digest);
  req.set_offset(offset);
  req.set_size(static_cast<int64_t>(len));
  auto ctx = session.Context();
  auto reader = stub->Read(ctx.get(), req);
  content_api::ReadContentResponse resp;
  std::string out;
  while (out.size() < len && reader->Read(&resp)) out += resp.data();
  if (out.size() >= len) {
    ctx->TryCancel();
    (void)reader->Finish();
    out.resize(len);
    return out;
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return FromGrpc(st).Wrap(fmt::format("read {} at {}", digest, offset));
  return out;  // EOF
}

struct Node {
  OciDescriptor desc;
  bool manifest = false;  // manifest or index: pushed by PUT manifests/
  size_t row = 0;
};

class PushJob {
 public:
  PushJob(const Session& session, const PushOptions& options, const reference::Reference& ref)
      : session_(session),
        options_(options),
        ref_(ref),
        source_key_(DistributionSourceKey(ref.Domain())),
        tracker_(options.progress) {
    for (const auto& p : options.platforms) matchers_.push_back(images::PlatformMatcher::Only(p));
  }

  Result<OciDescriptor> Run(const OciDescriptor& root);

 private:
  Status Collect(const OciDescriptor& desc);
  Status PushOne(remotes::Pusher& pusher, const Node& node);
  void Worker(remotes::Resolver& resolver);

  Session session_;
  const PushOptions& options_;
  reference::Reference ref_;
  std::string source_key_;
  ProgressTracker tracker_;
  std::vector<images::PlatformMatcher> matchers_;
  std::vector<Node> blobs_;      // configs and layers
  std::vector<Node> manifests_;  // in post order: children before parents
  std::set<std::string> seen_;
  std::map<std::string, std::string> bodies_;  // manifest digest -> bytes

  std::atomic<size_t> next_{0};
  std::mutex mu_;
  std::optional<Error> error_;  // guarded by mu_
};

Status PushJob::Collect(const OciDescriptor& desc) {
  if (!seen_.insert(desc.digest).second) return Ok();
  const bool is_manifest = IsManifestType(desc.media_type) || IsIndexType(desc.media_type);
  if (!is_manifest) {
    blobs_.push_back(
        {desc, false, tracker_.Add(RefKey(desc), desc.media_type, desc.digest, desc.size)});
    return Ok();
  }
  auto body = ReadContent(session_, desc);
  if (!body) return std::move(body).error().Wrap(fmt::format("read {}", desc.digest));
  bodies_[desc.digest] = *body;
  images::BlobReader reader = [this](const OciDescriptor& d) -> Result<std::string> {
    auto it = bodies_.find(d.digest);
    if (it != bodies_.end()) return it->second;
    return ReadContent(session_, d);
  };
  BERTH_ASSIGN_OR_RETURN(std::vector<OciDescriptor> children, images::ImageChildren(reader, desc));
  for (const auto& ch : children) {
    if (IsIndexType(desc.media_type) && !matchers_.empty() && ch.platform &&
        std::none_of(matchers_.begin(), matchers_.end(),
                     [&](const auto& m) { return m.Match(*ch.platform); })) {
      continue;
    }
    BERTH_TRY(Collect(ch));
  }
  manifests_.push_back(
      {desc, true, tracker_.Add(RefKey(desc), desc.media_type, desc.digest, desc.size)});
  return Ok();
}

Status PushJob::PushOne(remotes::Pusher& pusher, const Node& node) {
  const OciDescriptor& desc = node.desc;
  const std::string key = RefKey(desc);
  auto where = [&] { return fmt::format("{} to {}", key, ref_.Locator()); };
  auto exists = pusher.Exists(desc);
  if (!exists) return std::move(exists).error().Wrap("failed to check " + where());
  if (*exists) {
    tracker_.SetState(node.row, State::kExists);
    return Ok();
  }
  // A blob pulled from another repository of this registry can be mounted from there.
  if (auto info = StatContent(session_, desc.digest); info) {
    if (auto it = info->labels.find(source_key_); it != info->labels.end()) {
      for (const auto& repo : SplitDistributionSource(it->second)) {
        if (repo == ref_.Path()) continue;
        auto mounted = pusher.Mount(desc, repo);
        if (mounted && *mounted) {
          tracker_.SetState(node.row, State::kDone);
          return Ok();
        }
        break;  // containerd tries one candidate, then uploads
      }
    }
  } else {
    return std::move(info).error().Wrap(fmt::format("failed to push {}", key));
  }
  tracker_.SetState(node.row, State::kUploading);
  const Session& session = session_;
  auto st = pusher.PushBlob(desc, [&](int64_t offset, size_t len) -> Result<std::string> {
    auto data = ReadAt(session, desc.digest, offset, len);
    if (data) tracker_.SetOffset(node.row, offset + static_cast<int64_t>(data->size()));
    return data;
  });
  if (!st && !st.error().Is(Errc::kAlreadyExists)) {
    tracker_.SetState(node.row, State::kFailed);
    return std::move(st).error().Wrap("failed to push " + where());
  }
  tracker_.SetState(node.row, State::kDone);
  return Ok();
}

void PushJob::Worker(remotes::Resolver& resolver) {
  std::unique_ptr<remotes::Pusher> pusher;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (error_) return;
    }
    size_t i = next_.fetch_add(1);
    if (i >= blobs_.size()) return;
    Status st = Ok();
    if (!pusher) {
      auto p = resolver.NewPusher(ref_.String());
      if (p) {
        pusher = std::move(p).value();
      } else {
        st = std::move(p).error().Wrap(fmt::format("failed to get pusher for {}", ref_.String()));
      }
    }
    if (st) st = PushOne(*pusher, blobs_[i]);
    if (!st) {
      std::lock_guard lock(mu_);
      if (!error_) error_ = std::move(st).error();
      return;
    }
  }
}

Result<OciDescriptor> PushJob::Run(const OciDescriptor& root) {
  BERTH_TRY(Collect(root));
  tracker_.Report(true);
  remotes::Resolver resolver(options_.registry);
  {
    const size_t n = std::min<size_t>(
        static_cast<size_t>(std::max(1, options_.max_concurrent_uploads)), blobs_.size());
    std::vector<std::jthread> workers;
    for (size_t w = 0; w < n; ++w) workers.emplace_back([this, &resolver] { Worker(resolver); });
  }
  if (error_) {
    tracker_.Report(true);
    return *error_;
  }
  auto pusher = resolver.NewPusher(ref_.String());
  if (!pusher) {
    return std::move(pusher).error().Wrap(
        fmt::format("failed to get pusher for {}", ref_.String()));
  }
  for (const auto& node : manifests_) {
    const bool is_root = node.desc.digest == root.digest;
    const std::string key = RefKey(node.desc);
    if (!is_root) {
      auto exists = (*pusher)->Exists(node.desc);
      if (!exists) {
        return std::move(exists).error().Wrap(
            fmt::format("failed to check {} in {}", key, ref_.Locator()));
      }
      if (*exists) {
        tracker_.SetState(node.row, State::kExists);
        continue;
      }
    }
    tracker_.SetState(node.row, State::kUploading);
    auto st = (*pusher)->PushManifest(node.desc, bodies_[node.desc.digest],
                                      is_root ? ref_.Tag() : std::string());
    if (!st) {
      tracker_.SetState(node.row, State::kFailed);
      tracker_.Report(true);
      return std::move(st).error().Wrap(fmt::format("failed to push {} to {}", key, ref_.String()));
    }
    tracker_.SetState(node.row, State::kDone);
  }
  tracker_.Report(true);
  return root;
}

}  // namespace

Result<OciDescriptor> Push(const Session& session, const std::string& remote,
                           const std::string& local, const PushOptions& options) {
  auto ref = reference::Parse(remote);
  if (!ref) return std::move(ref).error();
  const std::string& name = local.empty() ? remote : local;
  BERTH_ASSIGN_OR_RETURN(OciDescriptor target, GetImageTarget(session, name));
  PushJob job(session, options, *ref);
  return job.Run(target);
}

}  // namespace berth::client
