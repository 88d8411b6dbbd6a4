#pragma once
// A snapshotter in another process, reached over containerd's snapshots gRPC API
// (containerd.services.snapshots.v1.Snapshots; containerd's snapshots/proxy). Every request
// names the snapshotter `name` (the proxy plugin's name, as containerd sends it) and carries the
// context's namespace and lease as containerd-namespace / containerd-lease headers. gRPC errors
// come back as berth errors of the same class.
#include <memory>
#include <string>

#include "snapshots/snapshotter.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace berth::snapshots::proxy {

class Snapshotter final : public snapshots::Snapshotter {
 public:
  // `address` is a unix socket path ("/run/x.sock", or "unix:///run/x.sock"). The connection is
  // made lazily: an unreachable server shows as Unavailable errors on calls.
  static std::unique_ptr<Snapshotter> Connect(const std::string& name, const std::string& address);
  ~Snapshotter() override;

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

  const std::string& Name() const { return name_; }
  const std::string& Address() const { return address_; }

 private:
  struct Stub;
  Snapshotter(std::string name, std::string address, std::unique_ptr<Stub> stub);

  std::string name_;
  std::string address_;
  std::unique_ptr<Stub> stub_;
};

// The gRPC target for an address: "unix:<path>" for a path; "unix:..." kept as is.
std::string GrpcTarget(const std::string& address);

}  // namespace berth::snapshots::proxy
