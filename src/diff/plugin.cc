#include "diff/plugin.h"

#include <sys/utsname.h>

#include <atomic>

#include "common/log.h"
#include "common/mount.h"
#include "content/content.h"
#include "diff/walking.h"

namespace berth::diff {
namespace {

// Forwards to the namespaced content store, looked up in the plugin set when first needed: the
// diff-service (io.containerd.service.v1) requires the differ, so the differ cannot require the
// service type without a cycle, and the set outlives initialisation.
class ServiceContentStore final : public content::Store {
 public:
  explicit ServiceContentStore(const plugin::Set& set) : set_(set) {}

  Result<content::Info> Info(const Context& ctx, const Digest& dgst) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Info(ctx, dgst);
  }
  Result<content::Info> Update(const Context& ctx, const content::Info& info,
                               const std::vector<std::string>& fieldpaths) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Update(ctx, info, fieldpaths);
  }
  berth::Status Walk(const Context& ctx,
                     const std::function<berth::Status(const content::Info&)>& fn,
                     const std::vector<std::string>& filters) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Walk(ctx, fn, filters);
  }
  berth::Status Delete(const Context& ctx, const Digest& dgst) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Delete(ctx, dgst);
  }
  Result<std::unique_ptr<content::ReaderAt>> ReaderAt(const Context& ctx,
                                                      const Descriptor& desc) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->ReaderAt(ctx, desc);
  }
  Result<content::Status> Status(const Context& ctx, const std::string& ref) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Status(ctx, ref);
  }
  Result<std::vector<content::Status>> ListStatuses(
      const Context& ctx, const std::vector<std::string>& filters) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->ListStatuses(ctx, filters);
  }
  berth::Status Abort(const Context& ctx, const std::string& ref) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Abort(ctx, ref);
  }
  Result<std::unique_ptr<content::Writer>> Writer(const Context& ctx,
                                                  const content::WriterOptions& opts) override {
    BERTH_ASSIGN_OR_RETURN(auto* s, Get());
    return s->Writer(ctx, opts);
  }

 private:
  Result<content::Store*> Get() {
    if (auto* s = store_.load(std::memory_order_acquire)) return s;
    auto* s = set_.Get<content::Store>(plugin::kService);
    if (s == nullptr) {
      return FailedPrecondition(
          "walking differ: no namespaced content store (io.containerd.service.v1 instance of "
          "content::Store) is loaded");
    }
    store_.store(s, std::memory_order_release);
    return s;
  }

  const plugin::Set& set_;
  std::atomic<content::Store*> store_{nullptr};
};

// containerd's platforms.DefaultSpec() for this host.
plugin::Platform HostPlatform() {
  plugin::Platform p{.os = "linux"};
  struct utsname u {};
  std::string machine = ::uname(&u) == 0 ? u.machine : "";
  if (machine == "x86_64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64") {
    p.architecture = "arm64";
  } else if (machine.starts_with("armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine == "i686" || machine == "i386") {
    p.architecture = "386";
  } else {
    p.architecture = machine;
  }
  return p;
}

// Keeps the store and the differ alive as long as the registered Differ.
struct Owned {
  std::unique_ptr<ServiceContentStore> store;
  std::unique_ptr<WalkingDiff> walking;
  Differ differ;
};

}  // namespace

void RegisterPlugins(plugin::Registry& registry) {
  registry.Add({
      .type = plugin::kDiff,
      .id = "walking",
      .requires_types = {plugin::kMetadata},
      .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
        ic.Platforms().push_back(HostPlatform());
        std::string tmp_root = ic.Options().root + "/tmpmounts";
        if (auto s = mount::CleanupTempMounts(tmp_root); !s) {
          log::L().WithError(s.error()).Warn("cleanup of temporary mounts incomplete");
        }
        auto owned = std::make_shared<Owned>();
        owned->store = std::make_unique<ServiceContentStore>(ic.Plugins());
        owned->walking = std::make_unique<WalkingDiff>(*owned->store, tmp_root);
        owned->differ = {.applier = owned->walking.get(), .comparer = owned->walking.get()};
        Differ* differ = &owned->differ;
        return plugin::Instance::Of<Differ>(std::shared_ptr<Differ>(std::move(owned), differ));
      },
  });
}

}  // namespace berth::diff
