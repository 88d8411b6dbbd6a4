#pragma once
// The native snapshotter (plugin io.containerd.snapshotter.v1.native), as containerd 1.6's
// snapshots/native: every active snapshot is a full copy of its parent's tree, so it works on any
// filesystem, at the cost of space and time per Prepare.
//
// Layout under root (created 0700):
//   metadata.db            the metastore (storage/metastore.h), plus metadata.db-lock
//   snapshots/<id>         the snapshot's tree (0755 unless the parent's root says otherwise)
//   snapshots/new-XXXXXX   a copy in progress; renamed to <id> when its metadata commits
//   snapshots/rm-<id>      a snapshot being deleted
// A view with a parent has no directory of its own: it is the parent's tree, read-only.
//
// Mounts (containerd's): bind <dir> with options rbind,rw (active) or rbind,ro (view), where
// <dir> is the snapshot's own tree, or the parent's for a view on a parent.
//
// Copies (native/copy.h) run outside the metadata write transaction, so concurrent Prepares copy
// in parallel; the transaction then checks the parent is still the one copied. Remove deletes the
// tree right away (rename to rm-<id> in the transaction, delete after). Cleanup removes trees no
// snapshot owns (crash leftovers), never a copy in progress.
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "snapshots/snapshotter.h"
#include "snapshots/storage/metastore.h"

namespace berth::snapshots::native {

class Snapshotter final : public snapshots::Snapshotter {
 public:
  static Result<std::unique_ptr<Snapshotter>> Open(const std::string& root);

  Result<snapshots::Info> Stat(const Context& ctx, const std::string& key) override;
  Result<snapshots::Info> Update(const Context& ctx, const snapshots::Info& info,
                                 const std::vector<std::string>& fieldpaths) override;
  Result<snapshots::Usage> Usage(const Context& ctx, const std::string& key) override;
  Result<std::vector<mount::Mount>> Mounts(const Context& ctx, const std::string& key) override;
  Result<std::vector<mount::Mount>> Prepare(const Context& ctx, const std::string& key,
                                            const std::string& parent,
                                            const Labels& labels) override;
  Result<std::vector<mount::Mount>> View(const Context& ctx, const std::string& key,
                                         const std::string& parent, const Labels& labels) override;
  Status Commit(const Context& ctx, const std::string& name, const std::string& key,
                const Labels& labels) override;
  Status Remove(const Context& ctx, const std::string& key) override;
  Status Walk(const Context& ctx, const std::function<Status(const snapshots::Info&)>& fn,
              const std::vector<std::string>& filters) override;
  Status Cleanup(const Context& ctx) override;

  const std::string& Root() const { return root_; }

 private:
  Snapshotter(std::string root, std::unique_ptr<storage::MetaStore> ms)
      : root_(std::move(root)), ms_(std::move(ms)) {}

  Result<std::vector<mount::Mount>> CreateSnapshot(Kind kind, const std::string& key,
                                                   const std::string& parent, const Labels& labels);
  std::vector<mount::Mount> MountsFor(const storage::Snapshot& s) const;
  std::string Dir(const std::string& id) const { return root_ + "/snapshots/" + id; }

  std::string root_;
  std::unique_ptr<storage::MetaStore> ms_;
  std::mutex in_flight_mu_;
  std::set<std::string> in_flight_;  // new-XXXXXX names being copied (Cleanup leaves them)
};

}  // namespace berth::snapshots::native
