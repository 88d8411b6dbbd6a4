#pragma once
// The btrfs snapshotter (plugin io.containerd.snapshotter.v1.btrfs), as containerd 1.6's
// snapshots/btrfs: every snapshot is a btrfs subvolume; Prepare/View snapshot the parent's
// subvolume (copy-on-write, O(1)), Commit takes a read-only snapshot of the active one.
// Subvolumes are made with libbtrfsutil.
//
// Layout under root (which must be on btrfs; created 0700):
//   metadata.db                the metastore (storage/metastore.h), plus metadata.db-lock
//   active/<id>                writable subvolume of an active snapshot
//   view/<id>                  subvolume of a view (read-only snapshot of the parent; a plain
//                              subvolume when it has no parent)
//   snapshots/<id>             read-only subvolume of a committed snapshot
//   <kind>/rm-<id>             a subvolume being deleted
// Cleanup deletes whatever in active/, view/, snapshots/ no stored snapshot owns.
//
// Mounts (containerd's): type "btrfs", source = the block device of the filesystem holding root
// (from /proc/self/mountinfo), options subvolid=<subvolume id> plus "ro" for views. The mounter
// needs access to that device; that is what lets the same Mount work in any mount namespace.
#include <memory>
#include <string>
#include <vector>

#include "snapshots/snapshotter.h"
#include "snapshots/storage/metastore.h"

namespace berth::snapshots::btrfs {

class Snapshotter final : public snapshots::Snapshotter {
 public:
  // plugin::Skip("path <root> (<fstype>) must be a btrfs filesystem to be used with the btrfs
  // snapshotter") when root is not on btrfs.
  static Result<std::unique_ptr<Snapshotter>> Open(const std::string& root);

  Result<snapshots::Info> Stat(const Context& ctx, const std::string& key) override;
  Result<snapshots::Info> Update(const Context& ctx, const snapshots::Info& info,
                                 const std::vector<std::string>& fieldpaths) override;
  // Active: bytes and inodes of what differs from the parent's subvolume (files added or
  // changed, by inode and ctime, which btrfs snapshots preserve); committed: recorded at commit.
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
  const std::string& Device() const { return device_; }

 private:
  Snapshotter(std::string root, std::string device, std::unique_ptr<storage::MetaStore> ms)
      : root_(std::move(root)), device_(std::move(device)), ms_(std::move(ms)) {}

  Result<std::vector<mount::Mount>> CreateSnapshot(Kind kind, const std::string& key,
                                                   const std::string& parent, const Labels& labels);
  Result<std::vector<mount::Mount>> MountsFor(const std::string& dir, Kind kind) const;
  Result<snapshots::Usage> ComputeUsage(const std::string& key, std::string* id);
  std::string Dir(Kind kind, const std::string& id) const;

  std::string root_;
  std::string device_;
  std::unique_ptr<storage::MetaStore> ms_;
};

}  // namespace berth::snapshots::btrfs
