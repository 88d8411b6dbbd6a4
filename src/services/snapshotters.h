#pragma once
// The namespaced snapshotters, by name: what the snapshots, diff and tasks services share.
#include <map>
#include <memory>
#include <string>

#include "metadata/snapshot_store.h"

namespace berth::services {

class Snapshotters {
 public:
  void Add(std::unique_ptr<metadata::SnapshotStore> store) {
    std::string name = store->Name();
    stores_.emplace(std::move(name), std::move(store));
  }
  // InvalidArgument "snapshotter argument missing" / "snapshotter not loaded: X", as containerd.
  Result<snapshots::Snapshotter*> Get(const std::string& name) const;

 private:
  std::map<std::string, std::unique_ptr<metadata::SnapshotStore>> stores_;
};

}  // namespace berth::services
