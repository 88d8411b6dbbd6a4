#pragma once
// transfer::Stores over containerd's gRPC API (the Content, Snapshots, Diff, Images, Leases and
// Namespaces services of a berthd or a containerd): what runs the pull and unpack pipelines in
// the CLI and the client library.
#include "client/session.h"
#include "transfer/stores.h"

namespace berth::client {

using images::OciDescriptor;

// The Context of a session's calls (its namespace and lease).
inline Context StoresContext(const Session& session) {
  return Context{.ns = session.Namespace(), .lease = session.Lease()};
}

class RemoteStores final : public transfer::Stores {
 public:
  // Calls go over `session`'s channel, with its timeout; namespace and lease come from each
  // call's Context.
  explicit RemoteStores(Session session) : session_(std::move(session)) {}

  Result<transfer::BlobInfo> ContentInfo(const Context& ctx, const std::string& digest) override;
  Result<std::string> ReadBlob(const Context& ctx, const OciDescriptor& desc) override;
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
  Result<OciDescriptor> ApplyLayer(const Context& ctx, const OciDescriptor& layer,
                                   const std::vector<mount::Mount>& mounts) override;
  Status PutImage(const Context& ctx, const std::string& name, const OciDescriptor& target,
                  const transfer::Labels& labels) override;
  Result<std::string> CreateLease(const Context& ctx, const transfer::LeaseSpec& spec) override;
  Status DeleteLease(const Context& ctx, const std::string& id) override;

 private:
  Session For(const Context& ctx) const {
    return session_.WithNamespace(ctx.ns).WithLease(ctx.lease);
  }
  Session session_;
};

}  // namespace berth::client
