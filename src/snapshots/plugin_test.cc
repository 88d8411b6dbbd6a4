#include "snapshots/plugin.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "snapshots/overlay/overlay.h"
#include "snapshots/snapshotter.h"

namespace berth::snapshots {
namespace {

const plugin::Plugin* Find(const plugin::Set& set, const std::string& id) {
  for (const auto& p : set.All()) {
    if (p->registration->type == plugin::kSnapshot && p->registration->id == id) return p.get();
  }
  return nullptr;
}

TEST(SnapshotsPluginTest, RegistersContainerdsSnapshotters) {
  auto tmp = fs::TempDir::Create("snap-plugin-");
  ASSERT_TRUE(tmp);
  plugin::Registry registry;
  RegisterPlugins(registry);
  plugin::InitOptions options;
  options.root = tmp->Path() + "/root";
  options.state = tmp->Path() + "/state";
  toml::table overlay;
  overlay.insert("root_path", tmp->Path() + "/custom");
  overlay.insert("upperdir_label", true);
  options.plugin_config["io.containerd.snapshotter.v1.overlayfs"] = overlay;
  auto set = registry.InitAll(options);
  ASSERT_TRUE(set) << set.error().ToString();

  const auto* ovl = Find(**set, "overlayfs");
  ASSERT_NE(ovl, nullptr);
  ASSERT_TRUE(ovl->instance) << (ovl->error ? ovl->error->ToString() : "");
  auto* s = ovl->instance->As<Snapshotter>();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ovl->exports.at("root"), tmp->Path() + "/custom");
  ASSERT_EQ(ovl->platforms.size(), 1u);
  EXPECT_EQ(ovl->platforms[0].os, "linux");
  Context ctx;
  ASSERT_TRUE(s->Prepare(ctx, "a", "", {}));
  auto info = s->Stat(ctx, "a");
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->labels.contains(overlay::kUpperdirLabel)) << "upperdir_label = true";

  const auto* native = Find(**set, "native");
  ASSERT_NE(native, nullptr);
  ASSERT_TRUE(native->instance) << (native->error ? native->error->ToString() : "");
  EXPECT_EQ(
      ::access((tmp->Path() + "/root/io.containerd.snapshotter.v1.native/metadata.db").c_str(),
               F_OK),
      0);

  const auto* btrfs = Find(**set, "btrfs");
  ASSERT_NE(btrfs, nullptr);
  ASSERT_FALSE(btrfs->instance) << "the temp dir is not on btrfs";
  ASSERT_TRUE(btrfs->error);
  EXPECT_TRUE(plugin::IsSkip(*btrfs->error)) << btrfs->error->ToString();
  EXPECT_EQ(btrfs->exports.at("root"), tmp->Path() + "/root/io.containerd.snapshotter.v1.btrfs");
  EXPECT_EQ(btrfs->platforms.size(), 1u);
}

}  // namespace
}  // namespace berth::snapshots
