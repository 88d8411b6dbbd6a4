#include "snapshots/overlay/overlay.h"

#include <gtest/gtest.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/mount.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::overlay {
namespace {

using testsuite::Fixture;
using testsuite::SnapshotterFactory;
using testsuite::SnapshotterSuite;

Status MakeDirs(const std::string& path) { return fs::MkdirAll(path, 0755); }

Result<Fixture> MakeOverlay(const std::string& root, const std::string&) {
  BERTH_ASSIGN_OR_RETURN(auto s, Snapshotter::Open(root));
  std::string r = s->Root();
  Fixture f;
  f.snapshotter = std::move(s);
  f.make_crash_leftovers = [r]() -> Result<std::vector<std::string>> {
    // A create interrupted before its rename, one interrupted after it (the id was never
    // committed), an interrupted delete, and a link to a snapshot that is gone.
    std::vector<std::string> out{r + "/snapshots/new-crash1", r + "/snapshots/99999",
                                 r + "/snapshots/rm-77", r + "/l/zzzz"};
    BERTH_TRY(MakeDirs(out[0] + "/fs"));
    BERTH_TRY(MakeDirs(out[0] + "/work"));
    BERTH_TRY(MakeDirs(out[1] + "/fs/etc"));
    testsuite::WriteFile(out[1] + "/fs/etc/file", "orphan");
    BERTH_TRY(MakeDirs(out[2] + "/fs"));
    if (::symlink("../snapshots/1679615/fs", out[3].c_str()) != 0) {
      return ErrnoError(errno, "symlink");
    }
    return out;
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Overlay, SnapshotterSuite,
                         testing::Values(SnapshotterFactory{"overlay", MakeOverlay}),
                         testsuite::FactoryName);

class OverlayTest : public testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("ovl-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
  }
  std::unique_ptr<Snapshotter> Open(const std::string& root, Options options = {}) {
    auto s = Snapshotter::Open(root, options);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? std::move(*s) : nullptr;
  }
  // key -> committed name on `parent`, without mounting.
  void Layer(Snapshotter& s, const std::string& name, const std::string& parent) {
    ASSERT_TRUE(s.Prepare(ctx_, name + "-a", parent, {}));
    ASSERT_TRUE(s.Commit(ctx_, name, name + "-a", {}));
  }

  Context ctx_;
  std::unique_ptr<fs::TempDir> tmp_;
};

TEST_F(OverlayTest, MountShapesAreContainerds) {
  auto s = Open(tmp_->Path() + "/root");
  ASSERT_TRUE(s);
  const std::string snaps = s->Root() + "/snapshots/";
  const bool index = ::access("/sys/module/overlay/parameters/index", F_OK) == 0;
  std::vector<std::string> prefix;
  if (index) prefix.emplace_back("index=off");

  auto a = s->Prepare(ctx_, "a", "", {});
  ASSERT_TRUE(a);
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].type, "bind");
  EXPECT_EQ((*a)[0].source, snaps + "1/fs");
  EXPECT_EQ((*a)[0].options, (std::vector<std::string>{"rw", "rbind"}));
  EXPECT_EQ(::access((snaps + "1/work").c_str(), F_OK), 0);

  auto v0 = s->View(ctx_, "v0", "", {});
  ASSERT_TRUE(v0);
  EXPECT_EQ((*v0)[0].options, (std::vector<std::string>{"ro", "rbind"}));
  EXPECT_NE(::access((snaps + "2/work").c_str(), F_OK), 0) << "views have no workdir";

  ASSERT_TRUE(s->Commit(ctx_, "c1", "a", {}));
  auto v1 = s->View(ctx_, "v1", "c1", {});
  ASSERT_TRUE(v1);
  EXPECT_EQ((*v1)[0].type, "bind");
  EXPECT_EQ((*v1)[0].source, snaps + "1/fs");
  EXPECT_EQ((*v1)[0].options, (std::vector<std::string>{"ro", "rbind"}));

  auto b = s->Prepare(ctx_, "b", "c1", {});
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].type, "overlay");
  EXPECT_EQ((*b)[0].source, "overlay");
  auto want = prefix;
  want.push_back("workdir=" + snaps + "4/work");
  want.push_back("upperdir=" + snaps + "4/fs");
  want.push_back("lowerdir=" + snaps + "1/fs");
  EXPECT_EQ((*b)[0].options, want);

  ASSERT_TRUE(s->Commit(ctx_, "c2", "b", {}));
  auto v2 = s->View(ctx_, "v2", "c2", {});
  ASSERT_TRUE(v2);
  want = prefix;
  want.push_back("lowerdir=" + snaps + "4/fs:" + snaps + "1/fs");
  EXPECT_EQ((*v2)[0].options, want);
  auto again = s->Mounts(ctx_, "v2");
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[0].options, want);
}

// Long chains switch lowerdir to <root>/l/<id>: same directories, a shorter string, and one
// common directory a chdir-ing mounter makes them relative to.
TEST_F(OverlayTest, LongChainsUseShortLinks) {
  // A root as long as a real one (/var/lib/berth/io.containerd.snapshotter.v1.overlayfs).
  std::string root = tmp_->Path() + "/" + std::string(40, 'x') + "/io.containerd.snapshotter.v1";
  auto s = Open(root);
  ASSERT_TRUE(s);
  std::string parent;
  for (int i = 0; i < 128; ++i) {
    std::string name = fmt::format("layer-{}", i);
    ASSERT_NO_FATAL_FAILURE(Layer(*s, name, parent));
    parent = name;
  }
  auto view = s->View(ctx_, "top", parent, {});
  ASSERT_TRUE(view) << view.error().ToString();
  const auto& options = (*view)[0].options;
  ASSERT_TRUE(options.back().starts_with("lowerdir="));
  std::string lower = options.back().substr(9);
  std::vector<std::string> dirs;
  for (size_t start = 0; start <= lower.size();) {
    size_t end = lower.find(':', start);
    if (end == std::string::npos) end = lower.size();
    dirs.push_back(lower.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(dirs.size(), 128u);
  size_t relative_bytes = 0;
  for (size_t i = 0; i < dirs.size(); ++i) {
    ASSERT_TRUE(dirs[i].starts_with(s->Root() + "/l/")) << dirs[i];
    relative_bytes += dirs[i].size() - (s->Root() + "/l/").size() + 1;
    char resolved[PATH_MAX];
    ASSERT_NE(::realpath(dirs[i].c_str(), resolved), nullptr) << dirs[i];
    // Immediate parent first: layer-127 has id 128, layer-0 id 1.
    EXPECT_EQ(std::string(resolved), fmt::format("{}/snapshots/{}/fs", s->Root(), 128 - i));
  }
  EXPECT_LT(relative_bytes, 1024u);

  // Mount it the way containerd's mount.All does for long options: from the common directory,
  // with relative names, in a child so this process's cwd stays.
  std::string target = tmp_->Path() + "/mnt";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  std::string data;
  for (size_t i = 0; i + 1 < options.size(); ++i) data += options[i] + ",";
  data += "lowerdir=";
  for (size_t i = 0; i < dirs.size(); ++i) {
    data += (i > 0 ? ":" : "") + dirs[i].substr(s->Root().size() + 3);  // strip "<root>/l/"
  }
  std::string chdir_to = s->Root() + "/l";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::chdir(chdir_to.c_str()) != 0) ::_exit(2);
    ::_exit(::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mount from " << chdir_to;
  struct stat st {};
  EXPECT_EQ(::stat(target.c_str(), &st), 0);
  ASSERT_TRUE(mount::UnmountAll(target));
}

TEST_F(OverlayTest, ShortChainsKeepAbsolutePaths) {
  auto s = Open(tmp_->Path() + "/root");
  ASSERT_TRUE(s);
  ASSERT_NO_FATAL_FAILURE(Layer(*s, "l0", ""));
  ASSERT_NO_FATAL_FAILURE(Layer(*s, "l1", "l0"));
  auto v = s->View(ctx_, "v", "l1", {});
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)[0].options.back(),
            fmt::format("lowerdir={0}/snapshots/2/fs:{0}/snapshots/1/fs", s->Root()));
  EXPECT_NE(::access((s->Root() + "/l/1").c_str(), F_OK), 0) << "no links for short chains";
}

TEST_F(OverlayTest, UpperdirLabel) {
  auto s = Open(tmp_->Path() + "/root", {.upperdir_label = true});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Prepare(ctx_, "a", "", {{"x", "y"}}));
  std::string upper = s->Root() + "/snapshots/1/fs";
  auto st = s->Stat(ctx_, "a");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->labels, (Labels{{"x", "y"}, {kUpperdirLabel, upper}}));
  auto u = s->Update(ctx_, snapshots::Info{.name = "a", .labels = {{"z", "1"}}}, {"labels.z"});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->labels.at(kUpperdirLabel), upper);
  int walked = 0;
  ASSERT_TRUE(s->Walk(ctx_,
                      [&](const snapshots::Info& info) {
                        ++walked;
                        EXPECT_EQ(info.labels.at(kUpperdirLabel), upper);
                        return Ok();
                      },
                      {}));
  EXPECT_EQ(walked, 1);
  s.reset();
  auto plain = Open(tmp_->Path() + "/root");  // the label is computed, never stored
  ASSERT_TRUE(plain);
  auto again = plain->Stat(ctx_, "a");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->labels, (Labels{{"x", "y"}, {"z", "1"}}));
}

TEST_F(OverlayTest, RemoveIsAsyncUnlessConfigured) {
  for (bool async : {true, false}) {
    std::string root = tmp_->Path() + (async ? "/async" : "/sync");
    auto s = Open(root, {.async_remove = async});
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->Prepare(ctx_, "a", "", {}));
    std::string dir = s->Root() + "/snapshots/1";
    ASSERT_EQ(::access(dir.c_str(), F_OK), 0);
    ASSERT_TRUE(s->Remove(ctx_, "a"));
    EXPECT_EQ(::access(dir.c_str(), F_OK) == 0, async) << (async ? "async" : "sync");
    ASSERT_TRUE(s->Cleanup(ctx_));
    EXPECT_NE(::access(dir.c_str(), F_OK), 0);
  }
}

TEST_F(OverlayTest, ReopenKeepsSnapshotsAndIds) {
  std::string root = tmp_->Path() + "/root";
  {
    auto s = Open(root);
    ASSERT_TRUE(s);
    ASSERT_NO_FATAL_FAILURE(Layer(*s, "base", ""));
    ASSERT_TRUE(s->Prepare(ctx_, "gone", "", {}));
    ASSERT_TRUE(s->Remove(ctx_, "gone"));
  }
  auto s = Open(root);
  ASSERT_TRUE(s);
  auto base = s->Stat(ctx_, "base");
  ASSERT_TRUE(base);
  EXPECT_EQ(base->kind, Kind::kCommitted);
  auto next = s->Prepare(ctx_, "next", "base", {});
  ASSERT_TRUE(next);
  EXPECT_NE((*next)[0].options.end(),
            std::find((*next)[0].options.begin(), (*next)[0].options.end(),
                      "upperdir=" + s->Root() + "/snapshots/3/fs"));
}

}  // namespace
}  // namespace berth::snapshots::overlay
