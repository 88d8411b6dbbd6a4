#include "transfer/unpack.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/json_depth.h"
#include "common/log.h"

namespace berth::transfer {
namespace {

constexpr const char* kSnapshotRefLabel = "containerd.io/snapshot.ref";
constexpr const char* kUncompressedLabel = "containerd.io/uncompressed";

// images.RootFS on a config blob: rootfs.diff_ids.
Result<std::vector<std::string>> ConfigDiffIds(std::string_view blob) {
  BERTH_TRY(CheckJsonDepth(blob, "unmarshal image config"));
  auto j = nlohmann::json::parse(blob, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Unknown("unmarshal image config: invalid JSON");
  std::vector<std::string> ids;
  if (!j.is_object()) return ids;
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) return ids;
  auto diff_ids = rootfs->find("diff_ids");
  if (diff_ids == rootfs->end() || diff_ids->is_null()) return ids;
  if (!diff_ids->is_array()) return Unknown("unmarshal image config: rootfs.diff_ids not a list");
  for (const auto& e : *diff_ids) {
    if (!e.is_string()) return Unknown("unmarshal image config: diff_id not a string");
    ids.push_back(e.get<std::string>());
  }
  return ids;
}

}  // namespace

// One layer onto parent_ (rootfs.ApplyLayerWithOpts / the unpacker's doUnpackFn). Returns
// whether it was extracted here (false: the chain exists already or another client won).
Result<bool> LayerUnpacker::UnpackLayer(const OciDescriptor& layer, const std::string& diff_id,
                                        const std::string& chain_id) {
  Stores& st = *stores_;
  const std::string& sn = options_.snapshotter;
  auto stat = st.StatSnapshot(ctx_, sn, chain_id);
  if (stat) return false;
  if (!stat.error().Is(Errc::kNotFound)) {
    return std::move(stat).error().Wrap(fmt::format("failed to stat snapshot {}", chain_id));
  }

  Labels labels;
  if (options_.label_snapshot_ref) labels[kSnapshotRefLabel] = chain_id;

  std::string key;
  std::vector<mount::Mount> mounts;
  bool prepared = false;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    key = fmt::format("extract-{} {}", NewUniqueId(), chain_id);
    auto m = st.PrepareSnapshot(ctx_, sn, key, parent_, labels);
    if (m) {
      mounts = std::move(m).value();
      prepared = true;
      break;
    }
    if (!m.error().Is(Errc::kAlreadyExists)) {
      return std::move(m).error().Wrap(
          fmt::format("failed to prepare extraction snapshot {:?}", key));
    }
    // The chain may have been committed meanwhile (or a remote snapshotter has it).
    auto again = st.StatSnapshot(ctx_, sn, chain_id);
    if (again) return false;
    if (!again.error().Is(Errc::kNotFound)) {
      return std::move(again).error().Wrap(fmt::format("failed to stat snapshot {}", chain_id));
    }
  }
  if (!prepared) {
    return AlreadyExists("unable to prepare extraction snapshot: " + key + " exists");
  }

  auto abort = [&] {
    if (auto s = st.RemoveSnapshot(ctx_, sn, key); !s) {
      log::L().WithError(s.error()).Warn(fmt::format("failed to cleanup {:?}", key));
    }
  };
  auto apply_start = std::chrono::steady_clock::now();
  auto applied = st.ApplyLayer(ctx_, layer, mounts);
  result_.apply_time += std::chrono::steady_clock::now() - apply_start;
  if (!applied) {
    abort();
    return std::move(applied).error().Wrap(fmt::format("failed to extract layer {}", diff_id));
  }
  if (applied->digest != diff_id) {
    abort();
    return Unknown(fmt::format("wrong diff id calculated on extraction {:?}", applied->digest));
  }
  if (auto s = st.CommitSnapshot(ctx_, sn, chain_id, key, labels); !s) {
    abort();
    if (s.error().Is(Errc::kAlreadyExists)) return false;
    return std::move(s).error().Wrap(fmt::format("failed to commit snapshot {}", key));
  }
  // The uncompressed label only once apply has verified the diffID.
  BERTH_TRY(st.UpdateContentLabels(ctx_, layer.digest, {{kUncompressedLabel, diff_id}}));
  return true;
}

Result<LayerUnpacker> LayerUnpacker::Create(Stores& stores, const Context& ctx,
                                            const OciManifest& manifest,
                                            const UnpackOptions& options) {
  LayerUnpacker u(stores, ctx, manifest, options);
  u.result_.config = manifest.config;
  BERTH_ASSIGN_OR_RETURN(std::string config_blob, stores.ReadBlob(ctx, manifest.config));
  auto diff_ids = ConfigDiffIds(config_blob);
  if (!diff_ids) return std::move(diff_ids).error().Wrap("failed to resolve rootfs");
  u.result_.diff_ids = std::move(diff_ids).value();
  if (u.result_.diff_ids.size() != manifest.layers.size()) {
    return Unknown("mismatched image rootfs and manifest layers");
  }
  return u;
}

Result<bool> LayerUnpacker::Apply(size_t i) {
  if (i != next_ || i >= manifest_.layers.size()) {
    return InvalidArgument(fmt::format("unpack layer {}: layer {} is next", i, next_));
  }
  chain_.push_back(result_.diff_ids[i]);
  std::string chain_id = images::ChainId(chain_);
  BERTH_ASSIGN_OR_RETURN(bool applied,
                         UnpackLayer(manifest_.layers[i], result_.diff_ids[i], chain_id));
  if (applied) ++result_.applied;
  parent_ = chain_id;
  ++next_;
  return applied;
}

Result<UnpackResult> LayerUnpacker::Finish() {
  if (next_ != manifest_.layers.size()) {
    return FailedPrecondition(
        fmt::format("unpack: {} of {} layers applied", next_, manifest_.layers.size()));
  }
  result_.chain_id = images::ChainId(chain_);
  BERTH_TRY(stores_->UpdateContentLabels(
      ctx_, manifest_.config.digest,
      {{"containerd.io/gc.ref.snapshot." + options_.snapshotter, result_.chain_id}}));
  return result_;
}

namespace {
struct Done {
  std::function<void()> fn;
  ~Done() { fn(); }
};
}  // namespace

Result<UnpackResult> UnpackManifest(Stores& stores, const Context& ctx, const OciManifest& manifest,
                                    const UnpackOptions& options) {
  BERTH_ASSIGN_OR_RETURN(Leased leased, WithLease(stores, ctx));
  Done done{leased.done};
  BERTH_ASSIGN_OR_RETURN(LayerUnpacker u,
                         LayerUnpacker::Create(stores, leased.ctx, manifest, options));
  for (size_t i = 0; i < u.Layers(); ++i) BERTH_TRY(u.Apply(i));
  return u.Finish();
}

Result<UnpackResult> UnpackImage(Stores& stores, const Context& ctx, const OciDescriptor& target,
                                 const PlatformMatcher& platform, const UnpackOptions& options) {
  BERTH_ASSIGN_OR_RETURN(Leased leased, WithLease(stores, ctx));
  Done done{leased.done};
  BERTH_ASSIGN_OR_RETURN(OciManifest manifest,
                         ImageManifest(ContentReader(stores, leased.ctx), target, platform));
  return UnpackManifest(stores, leased.ctx, manifest, options);
}

}  // namespace berth::transfer
