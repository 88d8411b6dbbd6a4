#pragma once
// The namespaced view of one snapshotter (containerd's metadata/snapshot.go). Keys are per
// namespace: v1/<ns>/snapshots/<snapshotter>/<key> records the backend key "<ns>/<seq>/<key>",
// the parent, children, times and labels; the backend only sees backend keys, and only the
// labels containerd passes through (containerd.io/snapshot/* and containerd.io/snapshot.ref).
// Remove drops the record; the backend snapshot goes at the next garbage collection.
#include <map>
#include <memory>
#include <string>

#include "metadata/db.h"
#include "snapshots/snapshotter.h"

namespace berth::metadata {

class SnapshotStore final : public snapshots::Snapshotter {
 public:
  SnapshotStore(Db& db, std::string name, snapshots::Snapshotter& backend)
      : db_(db), name_(std::move(name)), backend_(backend) {}

  const std::string& Name() const { return name_; }

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

 private:
  Result<std::vector<mount::Mount>> Create(const Context& ctx, const std::string& key,
                                           const std::string& parent, const Labels& labels,
                                           bool readonly);
  Result<std::string> BackendKey(const Context& ctx, const std::string& key);

  Db& db_;
  std::string name_;
  snapshots::Snapshotter& backend_;
};

// The namespaced snapshotters by name: what the snapshots, diff and tasks services and the CRI
// plugin share (the io.containerd.service.v1 "snapshots-service" instance).
class Snapshotters {
 public:
  void Add(std::unique_ptr<SnapshotStore> store) {
    std::string name = store->Name();
    stores_.emplace(std::move(name), std::move(store));
  }
  // InvalidArgument "snapshotter argument missing" / "snapshotter not loaded: X", as containerd.
  Result<snapshots::Snapshotter*> Get(const std::string& name) const;

 private:
  std::map<std::string, std::unique_ptr<SnapshotStore>> stores_;
};

}  // namespace berth::metadata
