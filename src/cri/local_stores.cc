#include "cri/local_stores.h"

#include <github.com/containerd/containerd/api/events/image.pb.h>

#include <fmt/format.h>

#include "common/log.h"
#include "common/timeutil.h"

namespace berth::cri {
namespace {

constexpr const char* kDefaultSnapshotterLabel = "containerd.io/defaults/snapshotter";
constexpr const char* kDefaultSnapshotter = "overlayfs";

Result<Descriptor> ToDescriptor(const transfer::OciDescriptor& d) {
  Descriptor out{.media_type = d.media_type, .size = d.size};
  BERTH_ASSIGN_OR_RETURN(out.digest, Digest::Parse(d.digest));
  return out;
}

class LocalWriter final : public transfer::BlobWriter {
 public:
  LocalWriter(content::Store& store, Context ctx, std::string ref,
              std::unique_ptr<content::Writer> w, int64_t total, Digest expected)
      : store_(store),
        ctx_(std::move(ctx)),
        ref_(std::move(ref)),
        w_(std::move(w)),
        total_(total),
        expected_(std::move(expected)) {
    if (auto st = w_->Status(); st) offset_ = st->offset;
  }
  ~LocalWriter() override {
    if (w_) (void)w_->Close();
  }

  int64_t Offset() const override { return offset_; }
  Status Write(std::string_view data) override {
    BERTH_TRY(w_->Write(data));
    offset_ += static_cast<int64_t>(data.size());
    return Ok();
  }
  Status Commit(const transfer::Labels& labels) override {
    auto st = w_->Commit(total_, expected_, labels);
    w_.reset();  // Commit always closes
    if (!st && st.error().Is(Errc::kAlreadyExists)) return Ok();
    return st;
  }
  Status Abort() override {
    if (w_) {
      (void)w_->Close();
      w_.reset();
    }
    return store_.Abort(ctx_, ref_);
  }

 private:
  content::Store& store_;
  Context ctx_;
  std::string ref_;
  std::unique_ptr<content::Writer> w_;
  int64_t total_;
  Digest expected_;
  int64_t offset_ = 0;
};

}  // namespace

Result<transfer::BlobInfo> LocalStores::ContentInfo(const Context& ctx, const std::string& digest) {
  BERTH_ASSIGN_OR_RETURN(Digest d, Digest::Parse(digest));
  BERTH_ASSIGN_OR_RETURN(content::Info info, d_.content->Info(ctx, d));
  return transfer::BlobInfo{.size = info.size, .labels = std::move(info.labels)};
}

Result<std::string> LocalStores::ReadBlob(const Context& ctx, const transfer::OciDescriptor& desc) {
  BERTH_ASSIGN_OR_RETURN(Descriptor d, ToDescriptor(desc));
  BERTH_ASSIGN_OR_RETURN(auto reader, d_.content->ReaderAt(ctx, d));
  std::string out(static_cast<size_t>(std::max<int64_t>(reader->Size(), 0)), '\0');
  size_t off = 0;
  while (off < out.size()) {
    BERTH_ASSIGN_OR_RETURN(
        size_t n, reader->ReadAt(out.data() + off, out.size() - off, static_cast<int64_t>(off)));
    if (n == 0) return Unknown(fmt::format("read {}: unexpected EOF", desc.digest));
    off += n;
  }
  return out;
}

Status LocalStores::UpdateContentLabels(const Context& ctx, const std::string& digest,
                                        const transfer::Labels& labels) {
  if (labels.empty()) return Ok();
  BERTH_ASSIGN_OR_RETURN(Digest d, Digest::Parse(digest));
  content::Info info{.digest = d};
  std::vector<std::string> paths;
  for (const auto& [k, v] : labels) {
    if (!v.empty()) info.labels[k] = v;
    paths.push_back("labels." + k);
  }
  BERTH_TRY(d_.content->Update(ctx, info, paths));
  return Ok();
}

Result<std::unique_ptr<transfer::BlobWriter>> LocalStores::OpenWriter(const Context& ctx,
                                                                      const std::string& ref,
                                                                      int64_t total,
                                                                      const std::string& expected) {
  content::WriterOptions opts{.ref = ref};
  opts.desc.size = total;
  if (!expected.empty()) {
    BERTH_ASSIGN_OR_RETURN(opts.desc.digest, Digest::Parse(expected));
  }
  BERTH_ASSIGN_OR_RETURN(auto w, d_.content->Writer(ctx, opts));
  return std::unique_ptr<transfer::BlobWriter>(
      std::make_unique<LocalWriter>(*d_.content, ctx, ref, std::move(w), total, opts.desc.digest));
}

Result<std::string> LocalStores::ResolveSnapshotter(const Context& ctx, const std::string& name) {
  if (!name.empty()) return name;
  if (d_.namespaces != nullptr) {
    BERTH_ASSIGN_OR_RETURN(auto labels, d_.namespaces->GetLabels(ctx.ns));
    if (auto it = labels.find(kDefaultSnapshotterLabel);
        it != labels.end() && !it->second.empty()) {
      return it->second;
    }
  }
  return std::string(kDefaultSnapshotter);
}

Status LocalStores::StatSnapshot(const Context& ctx, const std::string& sn,
                                 const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto* s, d_.snapshotters->Get(sn));
  BERTH_TRY(s->Stat(ctx, key));
  return Ok();
}

Result<std::vector<mount::Mount>> LocalStores::PrepareSnapshot(const Context& ctx,
                                                               const std::string& sn,
                                                               const std::string& key,
                                                               const std::string& parent,
                                                               const transfer::Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(auto* s, d_.snapshotters->Get(sn));
  return s->Prepare(ctx, key, parent, labels);
}

Status LocalStores::CommitSnapshot(const Context& ctx, const std::string& sn,
                                   const std::string& name, const std::string& key,
                                   const transfer::Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(auto* s, d_.snapshotters->Get(sn));
  return s->Commit(ctx, name, key, labels);
}

Status LocalStores::RemoveSnapshot(const Context& ctx, const std::string& sn,
                                   const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto* s, d_.snapshotters->Get(sn));
  return s->Remove(ctx, key);
}

Result<transfer::OciDescriptor> LocalStores::ApplyLayer(const Context& ctx,
                                                        const transfer::OciDescriptor& layer,
                                                        const std::vector<mount::Mount>& mounts) {
  if (d_.applier == nullptr) return NotImplemented("no differ can apply layers");
  BERTH_ASSIGN_OR_RETURN(Descriptor d, ToDescriptor(layer));
  BERTH_ASSIGN_OR_RETURN(Descriptor applied, d_.applier->Apply(ctx, d, mounts));
  transfer::OciDescriptor out;
  out.media_type = applied.media_type;
  out.digest = applied.digest.String();
  out.size = applied.size;
  return out;
}

Status LocalStores::PutImage(const Context& ctx, const std::string& name,
                             const transfer::OciDescriptor& target,
                             const transfer::Labels& labels) {
  metadata::Image image{.name = name, .labels = labels};
  BERTH_ASSIGN_OR_RETURN(image.target, ToDescriptor(target));
  auto publish = [&](const char* topic, const metadata::Image& img, bool created) {
    if (d_.publisher == nullptr) return;
    Status st = Ok();
    if (created) {
      containerd::services::images::v1::ImageCreate ev;
      ev.set_name(img.name);
      ev.mutable_labels()->insert(img.labels.begin(), img.labels.end());
      st = d_.publisher->Publish(ctx, topic, ev);
    } else {
      containerd::services::images::v1::ImageUpdate ev;
      ev.set_name(img.name);
      ev.mutable_labels()->insert(img.labels.begin(), img.labels.end());
      st = d_.publisher->Publish(ctx, topic, ev);
    }
    if (!st) log::L().WithError(st.error()).Warn(fmt::format("publish {}", topic));
  };
  auto created = d_.images->Create(ctx, image);
  if (created) {
    publish("/images/create", *created, true);
    return Ok();
  }
  if (!created.error().Is(Errc::kAlreadyExists)) {
    return std::move(created).error().Wrap(fmt::format("failed to create image {}", name));
  }
  auto updated = d_.images->Update(ctx, image, {});
  if (!updated) {
    return std::move(updated).error().Wrap(fmt::format("failed to update image {}", name));
  }
  publish("/images/update", *updated, false);
  return Ok();
}

Result<std::string> LocalStores::CreateLease(const Context& ctx, const transfer::LeaseSpec& spec) {
  Labels labels = spec.labels;
  if (spec.expire.count() > 0) {
    auto at = std::chrono::system_clock::now() + spec.expire;
    labels["containerd.io/gc.expire"] = FormatRfc3339Local(
        std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count());
  }
  BERTH_ASSIGN_OR_RETURN(
      auto lease,
      d_.leases->Create(ctx, spec.id.empty() ? transfer::NewUniqueId() : spec.id, labels));
  return lease.id;
}

Status LocalStores::DeleteLease(const Context& ctx, const std::string& id) {
  return d_.leases->Delete(ctx, id);
}

}  // namespace berth::cri
