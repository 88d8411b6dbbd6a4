#pragma once
// Image unpacking as containerd's Go client does it, plus the small client-side wrappers it
// needs (snapshots, diff, content, leases), shared by the client library and the CLI.
//
// Unpack (client image.Unpack / the pull unpacker): for each layer of the platform's manifest,
// with diffIDs from the config's rootfs.diff_ids and chain(Ln) = sha256("<chain(Ln-1)> <diffLn>"):
//   Stat(chain) exists -> skip; else Prepare("extract-<nanos>-<rand> <chain>", parent chain)
//   -> Diff.Apply(layer blob, mounts) -> check the returned digest is the diffID -> Commit(chain)
//   -> label the layer blob containerd.io/uncompressed=<diffID>; on failure Remove(extract key).
// Finally the config blob gets containerd.io/gc.ref.snapshot.<snapshotter>=<top chain>.
#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/session.h"
#include "common/errdefs.h"
#include "common/mount.h"
#include "images/image.h"

namespace berth::client {

using images::BlobReader;
using images::OciDescriptor;
using images::OciManifest;
using images::PlatformMatcher;

// ---- Leases ----

// leases.WithRandomID: "<nanosecond of the second>-<base64url of 3 random bytes>"; also the
// unique part of extraction keys.
std::string NewUniqueId();

struct LeaseSpec {
  std::string id;  // empty: NewUniqueId()
  // leases.WithExpiration: label containerd.io/gc.expire = now + expire (RFC 3339, local zone);
  // zero: no expiry.
  std::chrono::seconds expire = std::chrono::hours(24);
  std::map<std::string, std::string> labels;
};
// Creates the lease; returns its id (AlreadyExists as the server says).
Result<std::string> CreateLease(const Session& session, const LeaseSpec& spec);
Status DeleteLease(const Session& session, const std::string& id, bool sync = false);

// client.WithLease: if `session` has no lease, creates a default one (random id, 24 h) and
// returns a session using it plus a `done` that deletes it; otherwise the same session and a
// no-op. Errors of the deletion are ignored, as Go callers do with `defer done(ctx)`.
struct LeasedSession {
  Session session;
  std::function<void()> done;
};
Result<LeasedSession> WithLease(const Session& session);

// ---- Content ----

// Reads a whole blob (Info for the size, then Read), as the Go proxy's ReaderAt.
Result<std::string> ReadContent(const Session& session, const OciDescriptor& desc);
BlobReader ContentReader(const Session& session);
// Streams a blob to `out` (ctr's io.Copy(os.Stdout, content.NewReader(ra))).
Status CopyContent(const Session& session, const std::string& digest, std::FILE* out);
// Content.Update of one label ("labels.<key>" mask; "" removes it).
Status SetContentLabel(const Session& session, const std::string& digest, const std::string& key,
                       const std::string& value);

// ---- Snapshots ----

namespace snapshots_api = containerd::services::snapshots::v1;

struct SnapshotUsage {
  int64_t size = 0;
  int64_t inodes = 0;
};

// One snapshotter of the Snapshots service (snproxy.NewSnapshotter). Errors are the server's,
// mapped back to berth's classes.
class SnapshotClient {
 public:
  SnapshotClient(Session session, std::string snapshotter);

  const std::string& Name() const { return snapshotter_; }
  const Session& GetSession() const { return session_; }

  Result<snapshots_api::Info> Stat(const std::string& key) const;
  Result<std::vector<mount::Mount>> Prepare(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels = {}) const;
  Result<std::vector<mount::Mount>> View(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels = {}) const;
  Result<std::vector<mount::Mount>> Mounts(const std::string& key) const;
  Status Commit(const std::string& name, const std::string& key,
                const std::map<std::string, std::string>& labels = {}) const;
  Status Remove(const std::string& key) const;
  Result<SnapshotUsage> Usage(const std::string& key) const;
  // Update with field-mask `paths` ("labels.<k>", "labels"); returns the stored info.
  Result<snapshots_api::Info> Update(const snapshots_api::Info& info,
                                     const std::vector<std::string>& paths) const;
  // List (stream), in the server's order; stops at the first error fn returns.
  Status Walk(const std::function<Status(const snapshots_api::Info&)>& fn,
              const std::vector<std::string>& filters = {}) const;

 private:
  Session session_;
  std::string snapshotter_;
};

// The snapshotter a ctr command would use for `name`: itself if set, else the namespace's
// containerd.io/defaults/snapshotter label, else "overlayfs" (client.resolveSnapshotterName).
Result<std::string> ResolveSnapshotterName(const Session& session, const std::string& name);

// ---- Diff ----

struct DiffOptions {
  std::string media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  std::string ref;
  std::map<std::string, std::string> labels;
};
// Diff.Apply: applies the layer blob onto the mounts; returns the uncompressed descriptor.
Result<OciDescriptor> DiffApply(const Session& session, const OciDescriptor& layer,
                                const std::vector<mount::Mount>& mounts);
// Diff.Diff (Compare): writes the difference lower -> upper to the content store.
Result<OciDescriptor> DiffCompare(const Session& session, const std::vector<mount::Mount>& lower,
                                  const std::vector<mount::Mount>& upper,
                                  const DiffOptions& options);

// ---- Unpack ----

struct UnpackOptions {
  // The snapshotter to unpack into: already resolved (see ResolveSnapshotterName).
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
  std::chrono::nanoseconds apply_time{};  // the sum of the Diff.Apply calls
};

// UnpackManifest in per-layer steps, for a pipeline that applies each layer as soon as its
// blob is in the content store (client.Pull's unpacker). The config blob must be stored
// before Create; layer i's blob before Apply(i). Not thread-safe: one caller at a time.
class LayerUnpacker {
 public:
  // Reads the config's rootfs.diff_ids and checks them against the manifest's layers.
  // `session` should carry the lease the whole unpack runs under.
  static Result<LayerUnpacker> Create(const Session& session, const OciManifest& manifest,
                                      const UnpackOptions& options);
  size_t Layers() const { return manifest_.layers.size(); }
  const std::vector<std::string>& DiffIds() const { return result_.diff_ids; }
  // Applies layer `i` onto the chain of layers 0..i-1; layers must be applied in order.
  // Returns whether it was extracted here (false: its snapshot existed already).
  Result<bool> Apply(size_t i);
  // After the last layer: labels the config blob with
  // containerd.io/gc.ref.snapshot.<snapshotter>=<top chain> and returns the result.
  Result<UnpackResult> Finish();

 private:
  LayerUnpacker(const Session& session, OciManifest manifest, UnpackOptions options)
      : sn_(session, options.snapshotter),
        manifest_(std::move(manifest)),
        options_(std::move(options)) {}
  SnapshotClient sn_;
  OciManifest manifest_;
  UnpackOptions options_;
  UnpackResult result_;
  std::vector<std::string> chain_;
  std::string parent_;
  size_t next_ = 0;
};

// Unpacks the platform's manifest of the image `target`. Runs under the session's lease, or
// under a temporary one (client.WithLease) if it has none.
Result<UnpackResult> UnpackImage(const Session& session, const OciDescriptor& target,
                                 const PlatformMatcher& platform, const UnpackOptions& options);
// The same from a resolved manifest (for pull, which already holds config and layers).
Result<UnpackResult> UnpackManifest(const Session& session, const OciManifest& manifest,
                                    const UnpackOptions& options);

}  // namespace berth::client
