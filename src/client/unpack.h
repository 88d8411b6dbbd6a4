#pragma once
// The small client-side wrappers of containerd's services (leases, content, snapshots, diff)
// shared by the client library and the CLI, and image unpacking on a Session (the pipeline
// itself is transfer/unpack.h, run here over client::RemoteStores).
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
#include "transfer/unpack.h"

namespace berth::client {

using images::BlobReader;
using images::OciDescriptor;
using images::OciManifest;
using images::PlatformMatcher;

// ---- Leases ----

using transfer::LeaseSpec;
using transfer::NewUniqueId;
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

using transfer::UnpackOptions;
using transfer::UnpackResult;

// transfer::UnpackImage / UnpackManifest on a session (under its lease, or a temporary one).
Result<UnpackResult> UnpackImage(const Session& session, const OciDescriptor& target,
                                 const PlatformMatcher& platform, const UnpackOptions& options);
Result<UnpackResult> UnpackManifest(const Session& session, const OciManifest& manifest,
                                    const UnpackOptions& options);

}  // namespace berth::client
