#pragma once
// Image unpacking as containerd's Go client does it (client image.Unpack / the pull unpacker),
// over transfer::Stores.
//
// For each layer of the platform's manifest, with diffIDs from the config's rootfs.diff_ids and
// chain(Ln) = sha256("<chain(Ln-1)> <diffLn>"): Stat(chain) exists -> skip; else
// Prepare("extract-<nanos>-<rand> <chain>", parent chain) -> Apply(layer blob, mounts) -> check
// the returned digest is the diffID -> Commit(chain) -> label the layer blob
// containerd.io/uncompressed=<diffID>; on failure Remove(extract key). Finally the config blob
// gets containerd.io/gc.ref.snapshot.<snapshotter>=<top chain>.
#include <chrono>
#include <string>
#include <vector>

#include "transfer/stores.h"

namespace berth::transfer {

using images::OciManifest;
using images::PlatformMatcher;

struct UnpackOptions {
  // The snapshotter to unpack into: already resolved (see Stores::ResolveSnapshotter).
  std::string snapshotter;
  // The pull unpacker's way (client.Pull with WithPullUnpack): extraction snapshots and their
  // commits are labelled containerd.io/snapshot.ref=<chainID>, and a lost race on an extraction
  // key is retried at most 3 times. image.Unpack (ctr images mount, ctr snapshots unpack) sets
  // no labels.
  bool label_snapshot_ref = false;
};

struct UnpackResult {
  std::string chain_id;               // the top snapshot: identity.ChainID(diff_ids)
  std::vector<std::string> diff_ids;  // config rootfs.diff_ids
  OciDescriptor config;
  int applied = 0;  // layers actually extracted (0: everything existed already)
  std::chrono::nanoseconds apply_time{};  // the sum of the layer applies
  // Wall time of the whole unpack step (in a pull: waiting for downloads included): what a
  // re-pull that applies nothing spent checking the snapshots.
  std::chrono::nanoseconds elapsed{};
};

// Unpacking in per-layer steps, for a pipeline that applies each layer as soon as its blob is in
// the content store (client.Pull's unpacker). The config blob must be stored before Create;
// layer i's blob before Apply(i). Not thread-safe: one caller at a time. `stores` must outlive
// the unpacker.
class LayerUnpacker {
 public:
  // Reads the config's rootfs.diff_ids and checks them against the manifest's layers. `ctx`
  // should carry the lease the whole unpack runs under.
  static Result<LayerUnpacker> Create(Stores& stores, const Context& ctx,
                                      const OciManifest& manifest, const UnpackOptions& options);
  size_t Layers() const { return manifest_.layers.size(); }
  const std::vector<std::string>& DiffIds() const { return result_.diff_ids; }
  // Applies layer `i` onto the chain of layers 0..i-1; layers must be applied in order.
  // Returns whether it was extracted here (false: its snapshot existed already).
  Result<bool> Apply(size_t i);
  // After the last layer: labels the config blob with
  // containerd.io/gc.ref.snapshot.<snapshotter>=<top chain> and returns the result.
  Result<UnpackResult> Finish();

 private:
  LayerUnpacker(Stores& stores, Context ctx, OciManifest manifest, UnpackOptions options)
      : stores_(&stores),
        ctx_(std::move(ctx)),
        manifest_(std::move(manifest)),
        options_(std::move(options)) {}
  Result<bool> UnpackLayer(const OciDescriptor& layer, const std::string& diff_id,
                           const std::string& chain_id);

  Stores* stores_;
  Context ctx_;
  OciManifest manifest_;
  UnpackOptions options_;
  UnpackResult result_;
  std::vector<std::string> chain_;
  std::string parent_;
  size_t next_ = 0;
};

// Unpacks the platform's manifest of the image `target`. Runs under ctx's lease, or under a
// temporary one (client.WithLease) if it has none.
Result<UnpackResult> UnpackImage(Stores& stores, const Context& ctx, const OciDescriptor& target,
                                 const PlatformMatcher& platform, const UnpackOptions& options);
// The same from a resolved manifest (for pull, which already holds config and layers).
Result<UnpackResult> UnpackManifest(Stores& stores, const Context& ctx, const OciManifest& manifest,
                                    const UnpackOptions& options);

}  // namespace berth::transfer
