#include "snapshots/native/native.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::native {
namespace {

using testsuite::Fixture;
using testsuite::SnapshotterFactory;
using testsuite::SnapshotterSuite;

Result<Fixture> MakeNative(const std::string& root, const std::string&) {
  BERTH_ASSIGN_OR_RETURN(auto s, Snapshotter::Open(root));
  std::string r = s->Root();
  Fixture f;
  f.snapshotter = std::move(s);
  f.make_crash_leftovers = [r]() -> Result<std::vector<std::string>> {
    // A copy interrupted half-way, a tree renamed into place whose metadata never committed,
    // and a delete interrupted after its rename.
    std::vector<std::string> out{r + "/snapshots/new-crash1", r + "/snapshots/99999",
                                 r + "/snapshots/rm-7"};
    for (const auto& d : out) BERTH_TRY(fs::MkdirAll(d + "/etc", 0755));
    testsuite::WriteFile(out[1] + "/etc/passwd", "orphan");
    return out;
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Native, SnapshotterSuite,
                         testing::Values(SnapshotterFactory{"native", MakeNative}),
                         testsuite::FactoryName);

TEST(NativeTest, MountShapesAreContainerds) {
  auto tmp = fs::TempDir::Create("native-");
  ASSERT_TRUE(tmp);
  auto s = Snapshotter::Open(tmp->Path() + "/root");
  ASSERT_TRUE(s) << s.error().ToString();
  Context ctx;
  const std::string snaps = (*s)->Root() + "/snapshots/";
  auto a = (*s)->Prepare(ctx, "a", "", {});
  ASSERT_TRUE(a);
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].type, "bind");
  EXPECT_EQ((*a)[0].source, snaps + "1");
  EXPECT_EQ((*a)[0].options, (std::vector<std::string>{"rbind", "rw"}));
  ASSERT_TRUE((*s)->Commit(ctx, "c", "a", {}));
  auto v = (*s)->View(ctx, "v", "c", {});
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)[0].source, snaps + "1");  // a view on a parent is the parent, read-only
  EXPECT_EQ((*v)[0].options, (std::vector<std::string>{"rbind", "ro"}));
  EXPECT_NE(::access((snaps + "2").c_str(), F_OK), 0);
  auto b = (*s)->Prepare(ctx, "b", "c", {});
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)[0].source, snaps + "3");
  // Remove deletes right away.
  ASSERT_TRUE((*s)->Remove(ctx, "b"));
  EXPECT_NE(::access((snaps + "3").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace berth::snapshots::native
