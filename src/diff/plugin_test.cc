// The walking differ plugin: wiring only (registration, lazy content store lookup).
#include "diff/plugin.h"

#include "diff/test_util.h"

namespace berth::diff::test {
namespace {

class DiffPluginTest : public DiffTest {
 protected:
  // The graph berthd builds: a metadata plugin, the differ, and (after it, as diff-service
  // requires the differ) the service instance of the namespaced content store.
  plugin::Registry Registry(bool with_store) {
    plugin::Registry r;
    r.Add({.type = plugin::kMetadata,
           .id = "bolt",
           .init = [](plugin::InitContext&) -> Result<plugin::Instance> {
             return plugin::Instance::Of<int>(std::make_shared<int>(0));
           }});
    RegisterPlugins(r);
    if (with_store) {
      r.Add({.type = plugin::kService,
             .id = "content-store",
             .requires_types = {plugin::kDiff},
             .init = [this](plugin::InitContext&) -> Result<plugin::Instance> {
               std::shared_ptr<content::Store> s(store_.get(), [](content::Store*) {});
               return plugin::Instance::Of<content::Store>(std::move(s));
             }});
    }
    return r;
  }
};

TEST_F(DiffPluginTest, RegistersAWorkingDiffer) {
  auto r = Registry(true);
  auto set = r.InitAll({.root = Path("root")});
  ASSERT_TRUE(set) << set.error().ToString();
  auto differs = (*set)->GetAll<Differ>(plugin::kDiff);
  ASSERT_EQ(differs.count("walking"), 1u);
  Differ d = *differs["walking"];
  ASSERT_NE(d.applier, nullptr);
  ASSERT_NE(d.comparer, nullptr);
  const plugin::Plugin* p = nullptr;
  for (const auto& x : (*set)->All()) {
    if (x->registration->id == "walking") p = x.get();
  }
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->platforms.size(), 1u);
  EXPECT_EQ(p->platforms[0].os, "linux");

  std::string dir = MakeDir("dir");
  auto applied =
      d.applier->Apply(ctx_, Put(BuildTar({File("f", "via plugin")}), kMediaTypeLayer.data()),
                       {{.type = "bind", .source = dir, .options = {"rbind"}}});
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(ReadAll(dir + "/f"), "via plugin");
  EXPECT_TRUE(ReadDirNamesOf(Path("root/tmpmounts")).empty()) << "<root>/tmpmounts is used";
}

TEST_F(DiffPluginTest, MissingStoreIsAClearError) {
  auto r = Registry(false);
  auto set = r.InitAll({.root = Path("root")});
  ASSERT_TRUE(set);
  Differ d = *(*set)->GetAll<Differ>(plugin::kDiff)["walking"];
  auto applied = d.applier->Apply(ctx_, Put(BuildTar({}), kMediaTypeLayer.data()), {});
  ASSERT_FALSE(applied);
  EXPECT_TRUE(applied.error().Is(Errc::kFailedPrecondition));
  EXPECT_NE(applied.error().What().find("content::Store"), std::string::npos);
}

}  // namespace
}  // namespace berth::diff::test
