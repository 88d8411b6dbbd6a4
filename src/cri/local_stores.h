#pragma once
// transfer::Stores over berthd's own domain layer (the namespaced metadata content store and
// snapshotters, the differ, the image and lease stores), so the CRI plugin pulls and unpacks
// images in-process with the same pipeline the CLI runs over gRPC. Image creates and updates
// publish /images/create and /images/update, as the Images service does.
#include "content/content.h"
#include "diff/diff.h"
#include "events/events.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"
#include "metadata/snapshot_store.h"
#include "transfer/stores.h"

namespace berth::cri {

struct LocalStoresDeps {
  content::Store* content = nullptr;  // the namespaced (metadata) view
  metadata::Snapshotters* snapshotters = nullptr;
  diff::Applier* applier = nullptr;
  metadata::ImageStore* images = nullptr;
  metadata::LeaseStore* leases = nullptr;
  metadata::NamespaceStore* namespaces = nullptr;  // for the default snapshotter label
  events::Publisher* publisher = nullptr;          // may be null: no events
};

class LocalStores final : public transfer::Stores {
 public:
  explicit LocalStores(LocalStoresDeps deps) : d_(deps) {}

  Result<transfer::BlobInfo> ContentInfo(const Context& ctx, const std::string& digest) override;
  Result<std::string> ReadBlob(const Context& ctx, const transfer::OciDescriptor& desc) override;
  Status UpdateContentLabels(const Context& ctx, const std::string& digest,
                             const transfer::Labels& labels) override;
  Result<std::unique_ptr<transfer::BlobWriter>> OpenWriter(const Context& ctx,
                                                           const std::string& ref, int64_t total,
                                                           const std::string& expected) override;
  Result<std::string> ResolveSnapshotter(const Context& ctx, const std::string& name) override;
  Status StatSnapshot(const Context& ctx, const std::string& sn, const std::string& key) override;
  Result<std::vector<mount::Mount>> PrepareSnapshot(const Context& ctx, const std::string& sn,
                                                    const std::string& key,
                                                    const std::string& parent,
                                                    const transfer::Labels& labels) override;
  Status CommitSnapshot(const Context& ctx, const std::string& sn, const std::string& name,
                        const std::string& key, const transfer::Labels& labels) override;
  Status RemoveSnapshot(const Context& ctx, const std::string& sn, const std::string& key) override;
  Result<transfer::OciDescriptor> ApplyLayer(const Context& ctx,
                                             const transfer::OciDescriptor& layer,
                                             const std::vector<mount::Mount>& mounts) override;
  Status PutImage(const Context& ctx, const std::string& name,
                  const transfer::OciDescriptor& target, const transfer::Labels& labels) override;
  Result<std::string> CreateLease(const Context& ctx, const transfer::LeaseSpec& spec) override;
  Status DeleteLease(const Context& ctx, const std::string& id) override;

 private:
  LocalStoresDeps d_;
};

}  // namespace berth::cri
