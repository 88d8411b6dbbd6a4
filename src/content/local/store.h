#pragma once
// content::LocalStore: the content-addressed files under <root>/io.containerd.content.v1.content,
// laid out exactly as containerd 1.6's content/local store so either daemon can read the other's:
//
//   blobs/sha256/<hex>   committed blobs: complete, verified, mode 0444, mtime = commit time
//   ingest/<hex of sha256(ref)>/{ref,startedat,updatedat,total,data}   open ingests (ingest.h)
//
// A blob becomes visible only by one rename of a fully written, fsynced and verified `data`
// file, so a crash at any point leaves either no blob or the whole blob; leftover ingest files
// are cleaned when the store is opened and ingests resume after a restart.
//
// Labels: the local store keeps none (the metadata layer does, as in containerd), so Info and
// Walk report no labels, Commit ignores them and Update is FailedPrecondition.
//
// Thread safety: every method may be called from many threads at once. One Writer per ref at a
// time, enforced in-process (RefLock); one process owns a root.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"
#include "common/timeutil.h"
#include "content/content.h"

namespace berth::content {

class LocalStore final : public Store {
 public:
  // Opens (creating as needed) the store at `root` (= <root>/io.containerd.content.v1.content):
  // makes ingest/ and blobs/sha256/, then removes leftovers of interrupted writes from unlocked
  // ingests: "*.tmp" files, and ingest directories without `data` or `ref` (torn creations, or a
  // crash between the commit's rename and the ingest's removal).
  static Result<std::unique_ptr<LocalStore>> Open(const std::string& root);

  // The store's root, as an absolute canonical path.
  const std::string& Root() const { return root_; }

  // --- Manager
  // Size and created_at (mtime = commit time), updated_at (atime), no labels. NotFound
  // "content <digest>" if absent; InvalidArgument for an empty/invalid digest.
  Result<content::Info> Info(const Context& ctx, const Digest& dgst) override;
  // Always FailedPrecondition "update not supported on immutable content store" (containerd's
  // local store without a label store).
  Result<content::Info> Update(const Context& ctx, const content::Info& info,
                               const std::vector<std::string>& fieldpaths) override;
  // Blobs under blobs/sha256 in name order. Filter fields: `digest` (always present) and
  // `labels.*` (never present here); `size` is accepted but never present (containerd's
  // AdaptInfo). Names that are no valid digest are skipped with a warning. fn may Delete blobs.
  berth::Status Walk(const Context& ctx,
                     const std::function<berth::Status(const content::Info&)>& fn,
                     const std::vector<std::string>& filters) override;
  // Removes the blob file. NotFound if absent. Open readers keep reading the unlinked file.
  berth::Status Delete(const Context& ctx, const Digest& dgst) override;

  // --- Provider
  // pread-based, safe to share between threads; Size() is the size at open. NotFound if absent.
  Result<std::unique_ptr<content::ReaderAt>> ReaderAt(const Context& ctx,
                                                      const Descriptor& desc) override;

  // --- IngestManager
  // From the ingest's files: offset = bytes in data, total (0 if unknown), started_at,
  // updated_at (later of updatedat and data's mtime); expected is not persisted (empty).
  // NotFound "ingest ref ..." if there is no ingest; InvalidArgument for an empty ref.
  Result<content::Status> Status(const Context& ctx, const std::string& ref) override;
  // All readable ingests matching the filters (field `ref`), in ingest-directory order.
  Result<std::vector<content::Status>> ListStatuses(
      const Context& ctx, const std::vector<std::string>& filters) override;
  // Removes the ingest directory. NotFound if there is none. Like containerd, an ingest held by
  // a writer is removed too: that writer's Commit then fails with NotFound.
  berth::Status Abort(const Context& ctx, const std::string& ref) override;

  // --- Ingester
  // Locks opts.ref (Unavailable "ref <ref> locked for ..." while another writer holds it), then:
  // - opts.desc.digest already stored -> AlreadyExists "content <digest>";
  // - an existing ingest for the ref is resumed: data is re-hashed to restore offset and digest,
  //   started_at is kept, a total given now is recorded if none was;
  // - an ingest whose ref file differs, whose total differs from a non-zero opts.desc.size, or
  //   that is unreadable is reset (started afresh);
  // - otherwise a new ingest is created (ref, startedat, updatedat, total if > 0, then data).
  // InvalidArgument for an empty ref.
  Result<std::unique_ptr<content::Writer>> Writer(const Context& ctx,
                                                  const WriterOptions& opts) override;

  // --- Beyond content::Store (garbage collection)
  // Calls fn with the ref of every ingest directory (unreadable refs are logged and skipped);
  // an error from fn stops the walk and is returned (containerd's WalkStatusRefs).
  berth::Status WalkStatusRefs(const std::function<berth::Status(const std::string&)>& fn);
  // Removes every ingest not held by a writer whose last update (the later of updatedat and
  // data's mtime; the directory's mtime for an unreadable ingest) is before `older_than`.
  // Continues past failures and returns the first one.
  berth::Status CleanupIngests(Timestamp older_than);

 private:
  explicit LocalStore(std::string root);

  std::string IngestDir(std::string_view ref) const;
  Result<std::string> BlobPath(const Digest& dgst) const;
  void RemoveLeftovers();

  std::string root_;         // canonical
  std::string ingest_root_;  // <root>/ingest
  std::string blobs_dir_;    // <root>/blobs/sha256
};

}  // namespace berth::content
