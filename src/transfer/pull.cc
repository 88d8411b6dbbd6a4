// client.Pull (with WithPullUnpack) and client.Fetch: resolve, walk the image's manifests,
// download the layers the content store lacks on a small thread pool, and apply each layer as
// soon as it and its parent are ready, all under one lease.
#include "transfer/pull.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>

#include "common/reference.h"

namespace berth::transfer {
namespace {

using Clock = std::chrono::steady_clock;
using State = TransferStatus::State;
using Labels = std::map<std::string, std::string>;

// Manifests, indexes and configs are read whole into memory: cap them (containerd's
// remotes/docker limits manifests to 4 MiB; configs of large images stay well below 16).
constexpr int64_t kMaxMetadataSize = 16 << 20;

// images.ChildGCLabels per child, numbered as SetChildrenMappedLabels numbers them: a key
// ending in "." always gets its index, others only from their second use.
Labels ChildLabels(const std::vector<OciDescriptor>& children) {
  Labels labels;
  std::map<std::string, int> seen;
  for (const auto& ch : children) {
    std::string key;
    if (IsConfigType(ch.media_type)) {
      key = "containerd.io/gc.ref.content.config";
    } else if (IsManifestType(ch.media_type)) {
      key = "containerd.io/gc.ref.content.m.";
    } else if (IsLayerType(ch.media_type)) {
      key = "containerd.io/gc.ref.content.l.";
    } else {
      key = "containerd.io/gc.ref.content.";
    }
    int idx = seen[key]++;
    if (idx > 0 || key.back() == '.') key += std::to_string(idx);
    labels[key] = ch.digest;
  }
  return labels;
}

class Puller {
 public:
  Puller(Stores& stores, Context ctx, const PullOptions& options, std::string host,
         std::string repo)
      : stores_(stores),
        ctx_(std::move(ctx)),
        options_(options),
        host_(std::move(host)),
        repo_(std::move(repo)),
        source_key_(DistributionSourceKey(host_)),
        tracker_(options.progress) {
    if (options.platforms.empty()) {
      matchers_.push_back(images::PlatformMatcher::Only(images::DefaultPlatform()));
    } else {
      for (const auto& p : options.platforms) matchers_.push_back(images::PlatformMatcher::Only(p));
    }
    // client.Pull keeps one manifest per index (LimitManifests(1)); Fetch keeps every match.
    limit_one_ = options.unpack && !options.all_platforms && options.platforms.size() <= 1;
  }

  ProgressTracker& Tracker() { return tracker_; }

  // Everything after Resolve: walk, download, unpack. Fills timings except resolve/total.
  Result<std::optional<UnpackResult>> Transfer(remotes::Resolver& resolver, const std::string& name,
                                               const OciDescriptor& root, PullTimings& timings);

 private:
  Result<std::string> FetchSmall(const OciDescriptor& desc,
                                 const std::function<Result<Labels>(const std::string&)>& labels);
  Status Walk(const OciDescriptor& desc, bool want_layers);
  Status DownloadLayer(size_t i, remotes::Fetcher& fetcher);
  void Worker(remotes::Resolver& resolver, const std::string& name);
  Status UnpackAll(std::optional<UnpackResult>& out);
  Labels SourceLabel(const Labels& existing) const {
    auto it = existing.find(source_key_);
    return {{source_key_, AppendDistributionSource(it == existing.end() ? "" : it->second, repo_)}};
  }
  void Fail(Error e) {
    {
      std::lock_guard lock(mu_);
      if (!error_) error_ = std::move(e);
      failed_ = true;
    }
    cv_.notify_all();
  }
  bool Failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }

  Stores& stores_;
  Context ctx_;
  const PullOptions& options_;
  std::string host_;  // "host[:port]" of the reference
  std::string repo_;  // repository path
  std::string source_key_;
  ProgressTracker tracker_;
  std::vector<images::PlatformMatcher> matchers_;
  bool limit_one_ = false;
  std::unique_ptr<remotes::Fetcher> meta_fetcher_;

  std::map<std::string, std::string> cache_;  // digest -> manifest, index and config bytes
  struct Candidate {
    OciManifest manifest;
    std::optional<images::Platform> platform;
  };
  std::vector<Candidate> candidates_;  // manifests whose layers are fetched
  std::vector<OciDescriptor> layers_;  // to download, unique by digest
  std::map<std::string, size_t> layer_index_;
  std::vector<size_t> rows_;  // progress row of each layer

  std::atomic<int64_t> bytes_{0};
  std::atomic<size_t> next_layer_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> ready_;          // guarded by mu_
  bool failed_ = false;              // guarded by mu_
  std::optional<Error> error_;       // guarded by mu_
  Clock::time_point last_commit_{};  // guarded by mu_
};

Result<std::string> Puller::FetchSmall(
    const OciDescriptor& desc,
    const std::function<Result<Labels>(const std::string&)>& labels_for) {
  const std::string key = RefKey(desc);
  size_t row = tracker_.Add(key, desc.media_type, desc.digest, desc.size);
  std::string data;
  Labels existing;
  // Opening a writer for a stored blob puts it in the pull's lease before it answers
  // AlreadyExists (containerd's fetch does the same), so a GC running meanwhile cannot take a
  // blob this pull relies on (e.g. one whose image was just removed).
  bool exists = false;
  {
    auto w = OpenWriterWaiting(stores_, ctx_, key, desc.size, desc.digest);
    if (!w && !w.error().Is(Errc::kAlreadyExists)) {
      return std::move(w).error().Wrap(fmt::format("failed to open writer for {}", key));
    }
    exists = !w;  // a writer we got is dropped: WriteBlob below opens the ingest again
  }
  if (exists) {
    BERTH_ASSIGN_OR_RETURN(BlobInfo info, stores_.ContentInfo(ctx_, desc.digest));
    existing = info.labels;
    BERTH_ASSIGN_OR_RETURN(data, stores_.ReadBlob(ctx_, desc));
  } else {
    if (desc.size > kMaxMetadataSize || desc.size < 0) {
      return FailedPrecondition(fmt::format("{} from {}: size {} is over the {} byte limit", key,
                                            host_, desc.size, kMaxMetadataSize));
    }
    tracker_.SetState(row, State::kDownloading);
    data.reserve(static_cast<size_t>(desc.size));
    auto st = meta_fetcher_->Fetch(desc, 0, [&](std::string_view chunk) -> Status {
      if (static_cast<int64_t>(data.size() + chunk.size()) > desc.size) {
        return FailedPrecondition(fmt::format("more than the {} bytes announced", desc.size));
      }
      data.append(chunk);
      tracker_.AddOffset(row, static_cast<int64_t>(chunk.size()));
      return Ok();
    });
    if (!st) {
      tracker_.SetState(row, State::kFailed);
      return std::move(st).error().Wrap(fmt::format("failed to fetch {} from {}", key, host_));
    }
    bytes_ += static_cast<int64_t>(data.size());
  }
  cache_[desc.digest] = data;
  BERTH_ASSIGN_OR_RETURN(Labels labels, labels_for(data));
  labels.merge(SourceLabel(existing));
  if (exists) {
    BERTH_TRY(stores_.UpdateContentLabels(ctx_, desc.digest, labels));
  } else {
    auto st = WriteBlob(stores_, ctx_, key, desc, data, labels);
    if (!st) {
      tracker_.SetState(row, State::kFailed);
      return std::move(st).error().Wrap(fmt::format("failed to store {} from {}", key, host_));
    }
  }
  tracker_.SetState(row, exists ? State::kExists : State::kDone);
  return data;
}

Status Puller::Walk(const OciDescriptor& desc, bool want_layers) {
  images::BlobReader reader = [this](const OciDescriptor& d) -> Result<std::string> {
    auto it = cache_.find(d.digest);
    if (it == cache_.end()) return NotFound(fmt::format("content digest {}", d.digest));
    return it->second;
  };
  const bool is_index = IsIndexType(desc.media_type);
  if (!is_index && !IsManifestType(desc.media_type)) {
    auto data = FetchSmall(desc, [](const std::string&) -> Result<Labels> { return Labels{}; });
    if (!data) return std::move(data).error();
    return Ok();
  }
  // The labels come from the children, the children from the bytes: parse before storing.
  std::vector<OciDescriptor> children;
  auto data = FetchSmall(desc, [&](const std::string&) -> Result<Labels> {
    auto ch = images::ImageChildren(reader, desc);
    if (!ch) return std::move(ch).error().Wrap(fmt::format("parse {}", desc.digest));
    children = std::move(ch).value();
    return ChildLabels(children);
  });
  if (!data) return std::move(data).error();

  if (is_index) {
    std::vector<OciDescriptor> keep, metadata_only;
    for (const auto& ch : children) {
      bool match = options_.all_platforms || !ch.platform ||
                   std::any_of(matchers_.begin(), matchers_.end(),
                               [&](const auto& m) { return m.Match(*ch.platform); });
      if (match) {
        keep.push_back(ch);
      } else if (options_.all_metadata &&
                 (IsManifestType(ch.media_type) || IsIndexType(ch.media_type))) {
        metadata_only.push_back(ch);
      }
    }
    if (limit_one_ && keep.size() > 1) {
      // images.LimitManifests: by the matcher's preference, platform-less entries last.
      const auto& m = matchers_.front();
      std::stable_sort(keep.begin(), keep.end(),
                       [&](const OciDescriptor& a, const OciDescriptor& b) {
                         if (!a.platform || !b.platform) return a.platform && !b.platform;
                         return m.Less(*a.platform, *b.platform);
                       });
      keep.resize(1);
    }
    for (const auto& ch : keep) BERTH_TRY(Walk(ch, want_layers));
    for (const auto& ch : metadata_only) BERTH_TRY(Walk(ch, false));
    return Ok();
  }

  // A manifest: config now, layers for the pool.
  if (children.empty()) return Unknown(fmt::format("manifest {} has no config", desc.digest));
  const OciDescriptor& config = children.front();
  auto config_data =
      FetchSmall(config, [](const std::string&) -> Result<Labels> { return Labels{}; });
  if (!config_data) return std::move(config_data).error();
  if (!want_layers) return Ok();
  Candidate c;
  c.manifest.config = config;
  c.manifest.layers.assign(children.begin() + 1, children.end());
  c.platform = desc.platform;
  for (const auto& layer : c.manifest.layers) {
    if (layer_index_.count(layer.digest)) continue;
    layer_index_[layer.digest] = layers_.size();
    layers_.push_back(layer);
    rows_.push_back(tracker_.Add(RefKey(layer), layer.media_type, layer.digest, layer.size));
  }
  candidates_.push_back(std::move(c));
  return Ok();
}

Status Puller::DownloadLayer(size_t i, remotes::Fetcher& fetcher) {
  const OciDescriptor& desc = layers_[i];
  const size_t row = rows_[i];
  const std::string key = RefKey(desc);
  auto mark_ready = [&] {
    {
      std::lock_guard lock(mu_);
      ready_[i] = true;
      last_commit_ = Clock::now();
    }
    cv_.notify_all();
  };
  auto exists = [&](const Labels& existing) -> Status {
    BERTH_TRY(stores_.UpdateContentLabels(ctx_, desc.digest, SourceLabel(existing)));
    tracker_.SetState(row, State::kExists);
    mark_ready();
    return Ok();
  };
  // AlreadyExists from the writer: the blob is stored and now in the pull's lease.
  auto writer = OpenWriterWaiting(stores_, ctx_, key, desc.size, desc.digest);
  if (!writer) {
    if (writer.error().Is(Errc::kAlreadyExists)) {
      BERTH_ASSIGN_OR_RETURN(BlobInfo again, stores_.ContentInfo(ctx_, desc.digest));
      return exists(again.labels);
    }
    return std::move(writer).error().Wrap(fmt::format("failed to open writer for {}", key));
  }
  BlobWriter& w = **writer;
  const int64_t offset = w.Offset();
  tracker_.SetState(row, State::kDownloading);
  tracker_.SetOffset(row, offset);
  auto st = fetcher.Fetch(desc, offset, [&](std::string_view chunk) -> Status {
    if (Failed()) return Error(Errc::kCanceled, "pull aborted");
    BERTH_TRY(w.Write(chunk));
    bytes_ += static_cast<int64_t>(chunk.size());
    tracker_.AddOffset(row, static_cast<int64_t>(chunk.size()));
    return Ok();
  });
  if (st) st = w.Commit(SourceLabel({}));
  if (!st) {
    tracker_.SetState(row, State::kFailed);
    // Bad bytes must not be resumed later; an interrupted good download may be.
    if (st.error().Is(Errc::kFailedPrecondition) || st.error().Is(Errc::kCanceled)) {
      (void)w.Abort();
    }
    return std::move(st).error().Wrap(fmt::format("failed to fetch {} from {}", key, host_));
  }
  tracker_.SetState(row, State::kDone);
  mark_ready();
  return Ok();
}

void Puller::Worker(remotes::Resolver& resolver, const std::string& name) {
  std::unique_ptr<remotes::Fetcher> fetcher;
  while (!Failed()) {
    size_t i = next_layer_.fetch_add(1);
    if (i >= layers_.size()) return;
    if (!fetcher) {
      // Layers stream into a BlobWriter, whose commit has the store verify the digest: hash
      // once.
      auto f = resolver.NewFetcher(name, /*verify_digests=*/false);
      if (!f) {
        Fail(std::move(f).error().Wrap(fmt::format("failed to get fetcher for {}", name)));
        return;
      }
      fetcher = std::move(f).value();
    }
    if (auto st = DownloadLayer(i, *fetcher); !st) {
      Fail(std::move(st).error());
      return;
    }
  }
}

Status Puller::UnpackAll(std::optional<UnpackResult>& out) {
  if (!options_.unpack || candidates_.empty()) return Ok();
  // The manifest of the first platform (the host's by default) is unpacked.
  const Candidate* pick = nullptr;
  const auto& m = matchers_.front();
  for (const auto& c : candidates_) {
    if (c.platform && !m.Match(*c.platform)) continue;
    if (!pick || (pick->platform && c.platform && m.Less(*c.platform, *pick->platform))) pick = &c;
  }
  if (!pick) return Ok();
  BERTH_ASSIGN_OR_RETURN(std::string snapshotter,
                         stores_.ResolveSnapshotter(ctx_, options_.snapshotter));
  UnpackOptions uo{.snapshotter = snapshotter, .label_snapshot_ref = true};
  BERTH_ASSIGN_OR_RETURN(LayerUnpacker unpacker,
                         LayerUnpacker::Create(stores_, ctx_, pick->manifest, uo));
  for (size_t l = 0; l < unpacker.Layers(); ++l) {
    const size_t i = layer_index_.at(pick->manifest.layers[l].digest);
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return ready_[i] || failed_; });
      if (failed_) return Error(Errc::kCanceled, "unpack stopped: a download failed");
    }
    tracker_.SetState(rows_[i], State::kUnpacking);
    auto applied = unpacker.Apply(l);
    if (!applied) {
      tracker_.SetState(rows_[i], State::kFailed);
      return std::move(applied).error().Wrap(
          fmt::format("failed to unpack layer {}", pick->manifest.layers[l].digest));
    }
    tracker_.SetState(rows_[i], State::kUnpacked);
  }
  BERTH_ASSIGN_OR_RETURN(UnpackResult result, unpacker.Finish());
  out = std::move(result);
  return Ok();
}

Result<std::optional<UnpackResult>> Puller::Transfer(remotes::Resolver& resolver,
                                                     const std::string& name,
                                                     const OciDescriptor& root,
                                                     PullTimings& timings) {
  const auto fetch_start = Clock::now();
  {
    auto f = resolver.NewFetcher(name);
    if (!f) return std::move(f).error().Wrap(fmt::format("failed to get fetcher for {}", name));
    meta_fetcher_ = std::move(f).value();
  }
  BERTH_TRY(Walk(root, true));
  last_commit_ = Clock::now();
  ready_.assign(layers_.size(), false);

  const size_t n = std::min<size_t>(
      static_cast<size_t>(std::max(1, options_.max_concurrent_downloads)), layers_.size());
  std::vector<std::jthread> workers;
  workers.reserve(n);
  for (size_t w = 0; w < n; ++w) {
    workers.emplace_back([this, &resolver, &name] { Worker(resolver, name); });
  }
  std::optional<UnpackResult> unpacked;
  const auto unpack_start = Clock::now();
  Status unpack_status = UnpackAll(unpacked);
  if (unpacked) unpacked->elapsed = Clock::now() - unpack_start;
  if (!unpack_status) Fail(unpack_status.error());
  workers.clear();  // joins

  {
    std::lock_guard lock(mu_);
    timings.fetch = last_commit_ - fetch_start;
    if (error_) {
      // The first failure; a "stopped" unpack is only its consequence.
      return *error_;
    }
  }
  timings.bytes_fetched = bytes_;
  if (unpacked) timings.unpack = unpacked->apply_time;
  return unpacked;
}

}  // namespace

Result<PullResult> Pull(Stores& stores, const Context& ctx, const std::string& ref,
                        const PullOptions& options) {
  const auto start = Clock::now();
  auto parsed = reference::Parse(ref);
  if (!parsed) return std::move(parsed).error();

  BERTH_ASSIGN_OR_RETURN(Leased leased, WithLease(stores, ctx));
  struct Done {
    std::function<void()> fn;
    ~Done() { fn(); }
  } done{leased.done};

  PullResult result;
  Puller puller(stores, leased.ctx, options, parsed->Domain(), parsed->Path());
  size_t root_row = puller.Tracker().Add(ref, "", "", 0, State::kResolving);
  puller.Tracker().Report(true);

  remotes::Resolver resolver(options.registry);
  auto resolved = resolver.Resolve(ref);
  if (!resolved) {
    puller.Tracker().SetState(root_row, State::kFailed);
    puller.Tracker().Report(true);
    return std::move(resolved).error().Wrap(fmt::format("failed to resolve reference {:?}", ref));
  }
  result.timings.resolve = Clock::now() - start;
  puller.Tracker().Update(root_row, [&](TransferStatus& s) {
    s.state = State::kDone;
    s.media_type = resolved->desc.media_type;
    s.digest = resolved->desc.digest;
    s.total = s.offset = resolved->desc.size;
  });
  result.name = resolved->name;
  result.target = resolved->desc;

  auto unpacked = puller.Transfer(resolver, resolved->name, resolved->desc, result.timings);
  puller.Tracker().Report(true);
  if (!unpacked) return std::move(unpacked).error();
  result.unpacked = std::move(unpacked).value();

  if (auto st = stores.PutImage(leased.ctx, result.name, result.target, options.labels); !st) {
    return std::move(st).error();
  }
  result.timings.total = Clock::now() - start;
  return result;
}

}  // namespace berth::transfer
