#include "snapshots/plugin.h"

#include <memory>

#include "snapshots/btrfs/btrfs.h"
#include "snapshots/native/native.h"
#include "snapshots/overlay/overlay.h"

namespace berth::snapshots {
namespace {

// containerd's platforms.DefaultSpec(), which every snapshotter reports.
plugin::Platform DefaultPlatform() {
#if defined(__x86_64__)
  return {.os = "linux", .architecture = "amd64", .variant = ""};
#elif defined(__aarch64__)
  return {.os = "linux", .architecture = "arm64", .variant = "v8"};
#elif defined(__arm__)
  return {.os = "linux", .architecture = "arm", .variant = "v7"};
#elif defined(__i386__)
  return {.os = "linux", .architecture = "386", .variant = ""};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return {.os = "linux", .architecture = "ppc64le", .variant = ""};
#elif defined(__s390x__)
  return {.os = "linux", .architecture = "s390x", .variant = ""};
#elif defined(__riscv) && __riscv_xlen == 64
  return {.os = "linux", .architecture = "riscv64", .variant = ""};
#else
  return {.os = "linux", .architecture = "unknown", .variant = ""};
#endif
}

// `root_path` from the plugin's config, else the plugin root.
std::string RootOf(plugin::InitContext& ic) {
  std::string configured = ic.Config()["root_path"].value_or(std::string());
  return configured.empty() ? ic.Root() : configured;
}

plugin::Instance Share(std::unique_ptr<Snapshotter> s) {
  return plugin::Instance::Of<Snapshotter>(std::shared_ptr<Snapshotter>(std::move(s)));
}

}  // namespace

void RegisterPlugins(plugin::Registry& registry) {
  // containerd 1.6 lists them in this order (`ctr plugins ls`).
  registry.Add({.type = plugin::kSnapshot,
                .id = "btrfs",
                .config_defaults = "root_path = \"\"\n",
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  ic.Platforms().push_back(DefaultPlatform());
                  std::string root = RootOf(ic);
                  ic.Exports()["root"] = root;
                  BERTH_ASSIGN_OR_RETURN(auto s, btrfs::Snapshotter::Open(root));
                  return Share(std::move(s));
                }});
  registry.Add({.type = plugin::kSnapshot,
                .id = "native",
                .config_defaults = "root_path = \"\"\n",
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  ic.Platforms().push_back(DefaultPlatform());
                  BERTH_ASSIGN_OR_RETURN(auto s, native::Snapshotter::Open(RootOf(ic)));
                  return Share(std::move(s));
                }});
  registry.Add({.type = plugin::kSnapshot,
                .id = "overlayfs",
                .config_defaults = "root_path = \"\"\nupperdir_label = false\n",
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  ic.Platforms().push_back(DefaultPlatform());
                  std::string root = RootOf(ic);
                  overlay::Options options{
                      .upperdir_label = ic.Config()["upperdir_label"].value_or(false),
                      .async_remove = true,  // as containerd's plugin: dirs go at Cleanup
                  };
                  ic.Exports()["root"] = root;
                  BERTH_ASSIGN_OR_RETURN(auto s, overlay::Snapshotter::Open(root, options));
                  return Share(std::move(s));
                }});
}

}  // namespace berth::snapshots
