#pragma once
// What the image transfer pipelines (pull, unpack) need of a containerd, in domain terms: a
// content store with labels and resumable writers, snapshotters, a layer applier, image
// records and leases. Two implementations: client::RemoteStores speaks containerd's gRPC API
// to a daemon (the CLI and the client library), and berthd's own CRI plugin runs the same
// pipelines in-process over the metadata stores (cri::LocalStores), as containerd's CRI plugin
// runs the Go client over its local services.
//
// Every call carries a Context: the namespace, and the lease new objects are added to ("" =
// none). Errors keep berth's classes (NotFound, AlreadyExists, ...) as the stores answer them.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/context.h"
#include "common/errdefs.h"
#include "common/mount.h"
#include "images/image.h"

namespace berth::transfer {

using images::OciDescriptor;
using Labels = std::map<std::string, std::string>;

struct BlobInfo {
  int64_t size = 0;
  Labels labels;
};

// An open ingest of one blob (content.Writer). Not thread-safe: one fetch drives it.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // What an earlier, interrupted write of the same ref already holds (resume from there).
  virtual int64_t Offset() const = 0;
  virtual Status Write(std::string_view data) = 0;
  // Commits with the size and digest given at open; the store verifies both (a mismatch is
  // FailedPrecondition and nothing is committed). AlreadyExists is success.
  virtual Status Commit(const Labels& labels) = 0;
  // Drops the ingest (after bad bytes, which must not be resumed).
  virtual Status Abort() = 0;
};

struct LeaseSpec {
  std::string id;  // empty: NewUniqueId()
  // leases.WithExpiration: label containerd.io/gc.expire = now + expire (RFC 3339, local zone);
  // zero: no expiry.
  std::chrono::seconds expire = std::chrono::hours(24);
  Labels labels;
};

class Stores {
 public:
  virtual ~Stores() = default;

  // ---- Content
  // Size and labels of a blob; NotFound when absent.
  virtual Result<BlobInfo> ContentInfo(const Context& ctx, const std::string& digest) = 0;
  // A whole blob (manifests, indexes, configs: callers cap what they read).
  virtual Result<std::string> ReadBlob(const Context& ctx, const OciDescriptor& desc) = 0;
  // Sets the given labels only; an empty value removes one.
  virtual Status UpdateContentLabels(const Context& ctx, const std::string& digest,
                                     const Labels& labels) = 0;
  // Opens (or resumes) the ingest `ref` for a blob of `total` bytes and `expected` digest.
  // AlreadyExists when the blob is stored.
  virtual Result<std::unique_ptr<BlobWriter>> OpenWriter(const Context& ctx, const std::string& ref,
                                                         int64_t total,
                                                         const std::string& expected) = 0;

  // ---- Snapshots (of the snapshotter named `sn`)
  // The snapshotter for `name`: itself if set, else the namespace's default
  // (containerd.io/defaults/snapshotter label), else "overlayfs".
  virtual Result<std::string> ResolveSnapshotter(const Context& ctx, const std::string& name) = 0;
  // Ok when `key` exists, NotFound when not.
  virtual Status StatSnapshot(const Context& ctx, const std::string& sn,
                              const std::string& key) = 0;
  virtual Result<std::vector<mount::Mount>> PrepareSnapshot(const Context& ctx,
                                                            const std::string& sn,
                                                            const std::string& key,
                                                            const std::string& parent,
                                                            const Labels& labels) = 0;
  virtual Status CommitSnapshot(const Context& ctx, const std::string& sn, const std::string& name,
                                const std::string& key, const Labels& labels) = 0;
  virtual Status RemoveSnapshot(const Context& ctx, const std::string& sn,
                                const std::string& key) = 0;

  // ---- Diff: applies a layer blob onto mounts; returns the uncompressed descriptor.
  virtual Result<OciDescriptor> ApplyLayer(const Context& ctx, const OciDescriptor& layer,
                                           const std::vector<mount::Mount>& mounts) = 0;

  // ---- Images: creates the record, or replaces target and labels of an existing one
  // (client.createNewImage).
  virtual Status PutImage(const Context& ctx, const std::string& name, const OciDescriptor& target,
                          const Labels& labels) = 0;

  // ---- Leases
  virtual Result<std::string> CreateLease(const Context& ctx, const LeaseSpec& spec) = 0;
  virtual Status DeleteLease(const Context& ctx, const std::string& id) = 0;
};

// leases.WithRandomID: "<nanosecond of the second>-<base64url of 3 random bytes>"; also the
// unique part of extraction keys.
std::string NewUniqueId();

// client.WithLease: if ctx has no lease, creates a default one (random id, 24 h) and returns a
// context using it plus a `done` that deletes it; otherwise ctx and a no-op. Errors of the
// deletion are ignored, as Go callers do with `defer done(ctx)`.
struct Leased {
  Context ctx;
  std::function<void()> done;
};
Result<Leased> WithLease(Stores& stores, const Context& ctx);

// A BlobReader over the stores (for the images/ walks).
images::BlobReader ContentReader(Stores& stores, const Context& ctx);

// Stores::OpenWriter as containerd's content.OpenWriter: while another writer holds `ref` (a
// concurrent pull of the same blob: Unavailable "ref ... locked"), waits with a growing random
// backoff (up to 2 s between tries, 10 min in all) and tries again; the blob then usually
// exists and AlreadyExists comes back.
Result<std::unique_ptr<BlobWriter>> OpenWriterWaiting(Stores& stores, const Context& ctx,
                                                      const std::string& ref, int64_t total,
                                                      const std::string& expected);

// Writes a whole in-memory blob (manifests, configs, index): nothing written when the store
// has it already, then sets `labels` on it either way.
Status WriteBlob(Stores& stores, const Context& ctx, const std::string& ref,
                 const OciDescriptor& desc, std::string_view data, const Labels& labels = {});

}  // namespace berth::transfer
