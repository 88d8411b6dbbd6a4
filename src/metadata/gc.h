#pragma once
// Garbage collection: mark and sweep over the metadata graph (containerd's metadata/gc.go).
//
// Roots, per namespace: leases that have not expired (their content, ingests and snapshots),
// images (target + label refs), containers (their `snapshotter/snapshotKey` + label refs),
// blobs and snapshots labelled containerd.io/gc.root, ingests whose expiry is ahead. Edges: a
// blob's containerd.io/gc.ref.content* and gc.ref.snapshot.* labels, a snapshot's parent and
// labels, an ingest's expected digest. A lease labelled containerd.io/gc.flat keeps only what it
// lists. The sweep deletes every unmarked record in one transaction, then removes backend blobs,
// ingests and snapshots that no namespace references any more.
#include <chrono>
#include <cstdint>
#include <string>

#include "common/errdefs.h"
#include "metadata/db.h"

namespace berth::metadata {

struct GcStats {
  size_t content_records_removed = 0;
  size_t ingest_records_removed = 0;
  size_t leases_removed = 0;
  size_t snapshot_records_removed = 0;
  size_t snapshots_removed = 0;  // backend snapshots
  size_t blobs_removed = 0;      // backend files
  size_t ingests_aborted = 0;    // backend ingests
  std::chrono::nanoseconds duration{0};
};

// Runs one full collection. Takes the GC lock exclusively for its duration.
Result<GcStats> GarbageCollect(Db& db);

}  // namespace berth::metadata
