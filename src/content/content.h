#pragma once
// The content store contract (containerd's content/content.go): a content-addressed blob store
// with resumable, lockable ingests. Implementations: content::LocalStore (the files under
// <root>/io.containerd.content.v1.content) and, above it, metadata's namespaced view.
//
// Errors, by class:
//   NotFound          - no blob with that digest / no ingest with that ref
//   AlreadyExists     - Writer() whose expected digest is already stored; Commit of a digest
//                       that is already stored (the ingest is removed)
//   FailedPrecondition- Commit whose size or digest differs from what was expected (the ingest
//                       stays and can be resumed); Update on a store that keeps no labels
//   Unavailable       - Writer() on a ref another writer holds ("ref ... locked")
//   InvalidArgument   - malformed digest or empty ref, negative offsets, bad filters
//   OutOfRange        - not raised here: the Read service maps offsets past the end (ReadAt
//                       itself returns 0 at or past the end)
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/context.h"
#include "common/descriptor.h"
#include "common/digest.h"
#include "common/errdefs.h"
#include "common/labels.h"
#include "common/timeutil.h"

namespace berth::content {

struct Info {
  Digest digest;
  int64_t size = 0;
  Timestamp created_at{};
  Timestamp updated_at{};
  Labels labels;
};

struct Status {
  std::string ref;
  int64_t offset = 0;
  int64_t total = 0;  // 0 = unknown
  Digest expected;    // empty = unknown
  Timestamp started_at{};
  Timestamp updated_at{};
};

// Random access to one committed blob.
class ReaderAt {
 public:
  virtual ~ReaderAt() = default;
  // Reads up to `n` bytes at `offset`; returns the count (0 at or past the end).
  virtual Result<size_t> ReadAt(void* buf, size_t n, int64_t offset) = 0;
  virtual int64_t Size() const = 0;
};

// An open ingest. Not thread-safe: one stream drives it.
class Writer {
 public:
  virtual ~Writer() = default;
  // Appends data at the current offset.
  virtual berth::Status Write(std::string_view data) = 0;
  // Digest of the bytes written so far.
  virtual berth::Digest Digest() const = 0;
  // Verifies (size > 0: exact size; expected non-empty: exact digest), fsyncs and moves the
  // blob into place atomically; labels are recorded by stores that keep them. Always closes the
  // writer and releases the ref, success or not. FailedPrecondition on a size/digest mismatch
  // (the ingest stays: a new Writer() resumes it). AlreadyExists if the blob is already stored
  // (the ingest is removed).
  virtual berth::Status Commit(int64_t size, const berth::Digest& expected,
                               const Labels& labels) = 0;
  virtual Result<content::Status> Status() const = 0;
  // Sets the ingest's length: 0 restarts it; other sizes are NotImplemented for now (as
  // containerd's local store, which only supports 0).
  virtual berth::Status Truncate(int64_t size) = 0;
  // Releases the ref lock; the ingest stays on disk and can be resumed.
  virtual berth::Status Close() = 0;
};

struct WriterOptions {
  std::string ref;  // required, any non-empty string
  Descriptor desc;  // optional expected size/digest (size <= 0 = unknown)
};

class Store {
 public:
  virtual ~Store() = default;

  // --- Manager
  virtual Result<content::Info> Info(const Context& ctx, const Digest& dgst) = 0;
  // Mutable fields: "labels", "labels.<key>"; no fieldpaths = all mutable fields. Stores that
  // keep no labels (LocalStore, as containerd's local store without a label store) return
  // FailedPrecondition.
  virtual Result<content::Info> Update(const Context& ctx, const content::Info& info,
                                       const std::vector<std::string>& fieldpaths) = 0;
  // Calls fn for each blob matching the filters (containerd's filter language, fields
  // `digest`, `labels.*`; `size` parses but is never present, as containerd's AdaptInfo); an
  // error from fn stops the walk and is returned.
  virtual berth::Status Walk(const Context& ctx,
                             const std::function<berth::Status(const content::Info&)>& fn,
                             const std::vector<std::string>& filters) = 0;
  virtual berth::Status Delete(const Context& ctx, const Digest& dgst) = 0;

  // --- Provider
  virtual Result<std::unique_ptr<content::ReaderAt>> ReaderAt(const Context& ctx,
                                                              const Descriptor& desc) = 0;

  // --- IngestManager
  virtual Result<content::Status> Status(const Context& ctx, const std::string& ref) = 0;
  // Filters over field `ref`.
  virtual Result<std::vector<content::Status>> ListStatuses(
      const Context& ctx, const std::vector<std::string>& filters) = 0;
  virtual berth::Status Abort(const Context& ctx, const std::string& ref) = 0;

  // --- Ingester
  // Opens (or resumes) the ingest `opts.ref` and locks it for this writer. AlreadyExists if
  // opts.desc.digest is already stored; Unavailable while another writer holds the ref.
  virtual Result<std::unique_ptr<content::Writer>> Writer(const Context& ctx,
                                                          const WriterOptions& opts) = 0;
};

}  // namespace berth::content
