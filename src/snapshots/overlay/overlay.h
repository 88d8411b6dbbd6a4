#pragma once
// The overlayfs snapshotter (plugin io.containerd.snapshotter.v1.overlayfs, the default), as
// containerd 1.6's snapshots/overlay.
//
// Layout under root (created 0700):
//   metadata.db            the metastore (storage/metastore.h), plus metadata.db-lock
//   snapshots/<id>/fs      the layer's contents (0755; uid/gid of the parent's fs)
//   snapshots/<id>/work    overlay workdir (0711), active snapshots only
//   snapshots/new-XXXXXX   a snapshot being built; renamed to <id> in the creating transaction
//   snapshots/rm-<id>      a snapshot being deleted
//   l/<id in base 36>      -> ../snapshots/<id>/fs, short names for long chains (see below)
// Anything in snapshots/ or l/ that no stored snapshot owns is removed by Cleanup() (a crash
// between rename and metadata commit, async removals, interrupted deletes).
//
// Mounts (lowerdir: immediate parent first, base layer last):
//   no parent                bind <id>/fs           rw,rbind   (view: ro,rbind)
//   view, 1 parent           bind <parent>/fs       ro,rbind
//   active with parents      overlay "overlay"  [index=off] [userxattr] workdir=<id>/work
//                                               upperdir=<id>/fs lowerdir=<p1>/fs:<p2>/fs:...
//   view, >= 2 parents       overlay "overlay"  [index=off] [userxattr] lowerdir=...
// index=off when /sys/module/overlay/parameters/index exists; userxattr inside a user namespace.
//
// Long chains. mount(2) copies at most one page (4096 bytes) of option data, and overlayfs
// accepts up to 500 layers. Absolute lowerdirs like
// /var/lib/berth/io.containerd.snapshotter.v1.overlayfs/snapshots/123/fs (69 bytes) overflow the
// page at ~55 layers. When the option data would exceed the page minus 512 bytes (containerd's
// margin), each lowerdir becomes the symlink <root>/l/<base-36 id> instead (created on demand,
// reused, pruned by Cleanup; overlayfs resolves symlinks when it mounts, so the mounted layers are
// the same directories). That is enough for a naive mount(2) when the root is short (128 layers fit
// with roots up to ~24 bytes). For longer roots the mounter must shorten the string as
// containerd's mount.All does (mount/mount_linux.go compactLowerdirOption): chdir (in a child) to
// the lowerdirs' longest common directory, here always <root>/l, and pass relative names: 3 bytes
// per layer, so even 500 layers fit. Every Mount stays absolute and valid from any process and
// mount namespace that sees the root; chains that fit are exactly containerd's strings.
#include <memory>
#include <string>
#include <vector>

#include "snapshots/snapshotter.h"
#include "snapshots/storage/metastore.h"

namespace berth::snapshots::overlay {

inline constexpr const char* kUpperdirLabel = "containerd.io/snapshot/overlay.upperdir";

struct Options {
  // Stat/Update/Walk report label containerd.io/snapshot/overlay.upperdir = <id>/fs path.
  bool upperdir_label = false;
  // Remove drops the metadata only and the directories go at the next Cleanup (what containerd's
  // plugin configures). Off: Remove deletes the snapshot's directory right after committing.
  bool async_remove = true;
};

class Snapshotter final : public snapshots::Snapshotter {
 public:
  // Creates root (0700) and its layout if needed. FailedPrecondition if the backing filesystem
  // lacks d_type (xfs with ftype=0).
  static Result<std::unique_ptr<Snapshotter>> Open(const std::string& root, Options options = {});

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

  // The absolute root (symlinks resolved).
  const std::string& Root() const { return root_; }

 private:
  Snapshotter(std::string root, Options options, std::unique_ptr<storage::MetaStore> ms);

  Result<std::vector<mount::Mount>> CreateSnapshot(Kind kind, const std::string& key,
                                                   const std::string& parent, const Labels& labels);
  Result<std::vector<mount::Mount>> MountsFor(const storage::Snapshot& s);
  // <root>/l/<base-36 id>, created if missing.
  Result<std::string> ShortLink(const std::string& id);
  void AddUpperdirLabel(const std::string& id, snapshots::Info& info) const;
  std::string UpperPath(const std::string& id) const;
  std::string WorkPath(const std::string& id) const;

  std::string root_;
  Options options_;
  std::unique_ptr<storage::MetaStore> ms_;
  bool index_off_;
  bool userxattr_;
  size_t max_option_bytes_;
};

}  // namespace berth::snapshots::overlay
