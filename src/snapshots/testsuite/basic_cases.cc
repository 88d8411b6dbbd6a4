// The suite's cases about the lifecycle: layers, views, commit, remove, usage, labels, walk.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>

#include "common/fs.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::testsuite {
namespace {

std::set<std::string> WalkNames(snapshots::Snapshotter& s, const Context& ctx,
                                const std::vector<std::string>& filters) {
  std::set<std::string> names;
  auto st = s.Walk(
      ctx,
      [&](const snapshots::Info& info) {
        names.insert(info.name);
        return Ok();
      },
      filters);
  EXPECT_TRUE(st) << st.error().ToString();
  return names;
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

// containerd's checkSnapshotterBasic: two layers, a view on top, removal order.
TEST_P(SnapshotterSuite, Basic) {
  auto mounts = S().Prepare(Ctx(), "preparing", "", {{"containerd.io/gc.root", "x"}});
  ASSERT_TRUE(mounts) << mounts.error().ToString();
  ASSERT_FALSE(mounts->empty());
  std::string dir = MountNew(*mounts);
  ASSERT_FALSE(dir.empty());
  WriteFile(dir + "/foo", "foo\n");
  for (const char* d : {"/a", "/a/b", "/a/b/c"}) ASSERT_EQ(::mkdir((dir + d).c_str(), 0755), 0);
  Unmount(dir);
  ASSERT_TRUE(S().Commit(Ctx(), "committed", "preparing", {}));

  auto si = S().Stat(Ctx(), "committed");
  ASSERT_TRUE(si) << si.error().ToString();
  EXPECT_EQ(si->name, "committed");
  EXPECT_EQ(si->parent, "");
  EXPECT_EQ(si->kind, Kind::kCommitted);
  auto gone = S().Stat(Ctx(), "preparing");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().Is(Errc::kNotFound)) << gone.error().ToString();

  mounts = S().Prepare(Ctx(), "next", "committed", {});
  ASSERT_TRUE(mounts) << mounts.error().ToString();
  dir = MountNew(*mounts);
  ASSERT_FALSE(dir.empty());
  EXPECT_EQ(ReadFileOrDie(dir + "/foo"), "foo\n");
  EXPECT_TRUE(IsDir(dir + "/a/b/c"));
  WriteFile(dir + "/bar", "bar\n");
  WriteFile(dir + "/foo", "bar\n");
  ASSERT_TRUE(fs::RemoveAll(dir + "/a/b"));
  Unmount(dir);

  auto ni = S().Stat(Ctx(), "next");
  ASSERT_TRUE(ni);
  EXPECT_EQ(ni->parent, "committed");
  EXPECT_EQ(ni->kind, Kind::kActive);
  ASSERT_TRUE(S().Commit(Ctx(), "committed-next", "next", {}));
  auto si2 = S().Stat(Ctx(), "committed-next");
  ASSERT_TRUE(si2);
  EXPECT_EQ(si2->parent, "committed");
  EXPECT_EQ(si2->kind, Kind::kCommitted);

  std::map<std::string, snapshots::Info> walked;
  ASSERT_TRUE(S().Walk(Ctx(),
                       [&](const snapshots::Info& info) {
                         walked[info.name] = info;
                         return Ok();
                       },
                       {}));
  ASSERT_EQ(walked.size(), 2u);
  EXPECT_EQ(walked["committed"].created, si->created);
  EXPECT_EQ(walked["committed"].labels, si->labels);
  EXPECT_EQ(walked["committed-next"].parent, "committed");

  mounts = S().View(Ctx(), "view", "committed-next", {});
  ASSERT_TRUE(mounts) << mounts.error().ToString();
  dir = MountNew(*mounts);
  ASSERT_FALSE(dir.empty());
  EXPECT_EQ(ReadFileOrDie(dir + "/foo"), "bar\n");
  EXPECT_EQ(ReadFileOrDie(dir + "/bar"), "bar\n");
  EXPECT_TRUE(IsDir(dir + "/a"));
  EXPECT_FALSE(Exists(dir + "/a/b"));  // removed in the upper layer
  Unmount(dir);

  ASSERT_TRUE(S().Remove(Ctx(), "view"));
  auto busy = S().Remove(Ctx(), "committed");
  ASSERT_FALSE(busy);
  EXPECT_TRUE(busy.error().Is(Errc::kFailedPrecondition)) << busy.error().ToString();
  ASSERT_TRUE(S().Remove(Ctx(), "committed-next"));
  ASSERT_TRUE(S().Remove(Ctx(), "committed"));
}

// Files of every layer are visible through the top; each level shows its own state.
TEST_P(SnapshotterSuite, ParentChainThreeLevels) {
  ASSERT_NO_FATAL_FAILURE(CommitLayer("l1", "", {{"one", "1"}, {"d/", ""}, {"d/in1", "a"}}));
  ASSERT_NO_FATAL_FAILURE(CommitLayer("l2", "l1", {{"two", "2"}, {"d/in2", "b"}}));
  ASSERT_NO_FATAL_FAILURE(CommitLayer("l3", "l2", {{"three", "3"}, {"one", "1b"}}));
  ASSERT_TRUE(S().Prepare(Ctx(), "top", "l3", {}));
  WithMounted("top", [](const std::string& dir) {
    EXPECT_EQ(ReadFileOrDie(dir + "/one"), "1b");
    EXPECT_EQ(ReadFileOrDie(dir + "/two"), "2");
    EXPECT_EQ(ReadFileOrDie(dir + "/three"), "3");
    EXPECT_EQ(ReadFileOrDie(dir + "/d/in1"), "a");
    EXPECT_EQ(ReadFileOrDie(dir + "/d/in2"), "b");
    WriteFile(dir + "/four", "4");
  });
  std::vector<std::string> chain;
  for (std::string k = "top"; !k.empty();) {
    auto info = S().Stat(Ctx(), k);
    ASSERT_TRUE(info) << info.error().ToString();
    chain.push_back(k);
    k = info->parent;
  }
  EXPECT_EQ(chain, (std::vector<std::string>{"top", "l3", "l2", "l1"}));

  ASSERT_TRUE(S().View(Ctx(), "mid", "l2", {}));
  WithMounted("mid", [](const std::string& dir) {
    EXPECT_EQ(ReadFileOrDie(dir + "/one"), "1");
    EXPECT_EQ(ReadFileOrDie(dir + "/two"), "2");
    EXPECT_FALSE(Exists(dir + "/three"));
    EXPECT_FALSE(Exists(dir + "/four"));
  });
}

// Views mount read-only: with and without a parent, and again through Mounts().
TEST_P(SnapshotterSuite, ViewsAreReadOnly) {
  ASSERT_NO_FATAL_FAILURE(CommitLayer("base", "", {{"f", "x"}}));
  for (const auto& [key, parent] :
       std::vector<std::pair<std::string, std::string>>{{"view", "base"}, {"view-empty", ""}}) {
    auto mounts = S().View(Ctx(), key, parent, {});
    ASSERT_TRUE(mounts) << mounts.error().ToString();
    std::string dir = MountNew(*mounts);
    ASSERT_FALSE(dir.empty());
    int fd = ::open((dir + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    EXPECT_LT(fd, 0) << key << ": creating a file in a view must fail";
    if (fd >= 0) ::close(fd);
    EXPECT_EQ(errno, EROFS) << key;
    Unmount(dir);
    auto info = S().Stat(Ctx(), key);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->kind, Kind::kView);
  }
  WithMounted("view", [](const std::string& dir) {
    EXPECT_EQ(ReadFileOrDie(dir + "/f"), "x");
    int fd = ::open((dir + "/f").c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    EXPECT_LT(fd, 0) << "writing a file of a view must fail";
    if (fd >= 0) ::close(fd);
  });
  auto commit = S().Commit(Ctx(), "c", "view", {});
  ASSERT_FALSE(commit);
  EXPECT_TRUE(commit.error().Is(Errc::kFailedPrecondition)) << commit.error().ToString();
}

// Commit: the key goes, the name comes (Committed, same parent, labels replaced).
TEST_P(SnapshotterSuite, CommitSemantics) {
  ASSERT_NO_FATAL_FAILURE(CommitLayer("base", "", {{"f", "x"}}));
  ASSERT_TRUE(S().Prepare(Ctx(), "k", "base", {{"a", "1"}}));
  ASSERT_TRUE(S().Commit(Ctx(), "n", "k", {{"b", "2"}}));
  auto gone = S().Stat(Ctx(), "k");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().Is(Errc::kNotFound));
  auto n = S().Stat(Ctx(), "n");
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(n->kind, Kind::kCommitted);
  EXPECT_EQ(n->parent, "base");
  EXPECT_EQ(n->labels, (Labels{{"b", "2"}}));
  EXPECT_EQ(n->created, n->updated);

  auto mounts = S().Mounts(Ctx(), "n");
  ASSERT_FALSE(mounts);
  EXPECT_TRUE(mounts.error().Is(Errc::kFailedPrecondition)) << mounts.error().ToString();

  ASSERT_TRUE(S().Prepare(Ctx(), "k2", "", {}));
  auto taken = S().Commit(Ctx(), "n", "k2", {});
  ASSERT_FALSE(taken);
  EXPECT_TRUE(taken.error().Is(Errc::kAlreadyExists)) << taken.error().ToString();
  auto still = S().Stat(Ctx(), "k2");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->kind, Kind::kActive);

  auto missing = S().Commit(Ctx(), "n3", "nope", {});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound)) << missing.error().ToString();

  // The key is free again once committed.
  ASSERT_TRUE(S().Prepare(Ctx(), "k", "n", {}));
  WithMounted("k", [](const std::string& dir) { EXPECT_EQ(ReadFileOrDie(dir + "/f"), "x"); });
}

// Parents with children cannot go; removing children first works; keys are reusable.
TEST_P(SnapshotterSuite, RemoveOrdering) {
  ASSERT_NO_FATAL_FAILURE(CommitLayer("base", "", {{"f", "x"}}));
  ASSERT_NO_FATAL_FAILURE(CommitLayer("inter", "base", {{"g", "y"}}));
  ASSERT_TRUE(S().Prepare(Ctx(), "top", "inter", {}));
  ASSERT_TRUE(S().View(Ctx(), "view", "inter", {}));
  for (const char* key : {"inter", "base"}) {
    auto s = S().Remove(Ctx(), key);
    ASSERT_FALSE(s) << key;
    EXPECT_TRUE(s.error().Is(Errc::kFailedPrecondition)) << s.error().ToString();
    EXPECT_NE(s.error().What().find("cannot remove snapshot with child"), std::string::npos);
  }
  ASSERT_TRUE(S().Remove(Ctx(), "top"));
  EXPECT_FALSE(S().Remove(Ctx(), "inter"));  // the view still holds it
  ASSERT_TRUE(S().Remove(Ctx(), "view"));
  ASSERT_TRUE(S().Remove(Ctx(), "inter"));
  ASSERT_TRUE(S().Remove(Ctx(), "base"));
  EXPECT_TRUE(WalkNames(S(), Ctx(), {}).empty());
  auto again = S().Remove(Ctx(), "base");
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().Is(Errc::kNotFound));

  // containerd's checkRemove: a removed key comes back as another kind.
  ASSERT_TRUE(S().Prepare(Ctx(), "committed-a", "", {}));
  ASSERT_TRUE(S().Commit(Ctx(), "committed-1", "committed-a", {}));
  ASSERT_TRUE(S().Prepare(Ctx(), "reuse-1", "committed-1", {}));
  ASSERT_TRUE(S().Remove(Ctx(), "reuse-1"));
  ASSERT_TRUE(S().View(Ctx(), "reuse-1", "committed-1", {}));
  ASSERT_TRUE(S().Remove(Ctx(), "reuse-1"));
  ASSERT_TRUE(S().Prepare(Ctx(), "reuse-1", "", {}));
  ASSERT_TRUE(S().Remove(Ctx(), "committed-1"));
  ASSERT_TRUE(S().Commit(Ctx(), "committed-1", "reuse-1", {}));
}

// Usage of an active snapshot follows what is written; Commit records it.
TEST_P(SnapshotterSuite, UsageGrowsAndIsRecorded) {
  ASSERT_TRUE(S().Prepare(Ctx(), "a", "", {}));
  auto before = S().Usage(Ctx(), "a");
  ASSERT_TRUE(before) << before.error().ToString();
  std::string mib(1 << 20, '\0');
  for (size_t i = 0; i < mib.size(); ++i) mib[i] = static_cast<char>((i * 131) % 251);
  WithMounted("a", [&](const std::string& dir) { WriteFile(dir + "/big", mib); });
  auto after = S().Usage(Ctx(), "a");
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_GE(after->size, before->size + (1 << 20));
  EXPECT_EQ(after->inodes, before->inodes + 1);

  ASSERT_TRUE(S().Commit(Ctx(), "c", "a", {}));
  auto recorded = S().Usage(Ctx(), "c");
  ASSERT_TRUE(recorded) << recorded.error().ToString();
  EXPECT_EQ(recorded->inodes, after->inodes);
  EXPECT_GE(recorded->size, 1 << 20);
  auto missing = S().Usage(Ctx(), "a");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
}

// Update: labels, labels.<k>, empty mask; times; immutable fields.
TEST_P(SnapshotterSuite, UpdateLabels) {
  ASSERT_TRUE(S().Prepare(Ctx(), "a", "", {{"l1", "v1"}}));
  auto st = S().Stat(Ctx(), "a");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->created, st->updated);
  EXPECT_EQ(st->labels, (Labels{{"l1", "v1"}}));
  const Timestamp created = st->created;

  snapshots::Info info = *st;
  info.parent = "doesnotexist";
  info.labels = {{"l1", "v1"}, {"l2", "v2"}, {"l3", "v3"}};
  auto u = S().Update(Ctx(), info, {});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->labels, info.labels);
  EXPECT_EQ(u->parent, "");
  EXPECT_EQ(u->kind, Kind::kActive);
  EXPECT_EQ(u->created, created);
  EXPECT_GE(u->updated, created);

  info.labels = {{"l1", "updated"}, {"l4", "v4"}};
  u = S().Update(Ctx(), info, {"labels.l1", "labels.l2"});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->labels, (Labels{{"l1", "updated"}, {"l3", "v3"}}));

  info.labels = {{"l4", "v4"}};
  u = S().Update(Ctx(), info, {"labels"});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->labels, (Labels{{"l4", "v4"}}));
  auto again = S().Stat(Ctx(), "a");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->labels, u->labels);
  EXPECT_EQ(again->updated, u->updated);

  info.labels = {{"dotted.key/x", "y"}};
  u = S().Update(Ctx(), info, {"labels.dotted.key/x"});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->labels.at("dotted.key/x"), "y");

  auto bad = S().Update(Ctx(), info, {"parent"});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument)) << bad.error().ToString();
  info.name = "nope";
  auto missing = S().Update(Ctx(), info, {});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));

  ASSERT_NO_FATAL_FAILURE(CommitLayer("c", "", {}));
  snapshots::Info ci{.kind = Kind::kCommitted, .name = "c", .labels = {{"k", "v"}}};
  u = S().Update(Ctx(), ci, {"labels.k"});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->labels, (Labels{{"k", "v"}}));
  EXPECT_EQ(u->kind, Kind::kCommitted);
}

// containerd's checkWalk table, plus a bad filter.
TEST_P(SnapshotterSuite, WalkFilters) {
  const Labels root{{"containerd.io/gc.root", "check-walk"}};
  auto with = [&](const char* l) {
    Labels out = root;
    out["l"] = l;
    return out;
  };
  ASSERT_TRUE(S().Prepare(Ctx(), "a-np", "", root));
  ASSERT_TRUE(S().Prepare(Ctx(), "p-tmp", "", root));
  ASSERT_TRUE(S().Commit(Ctx(), "p", "p-tmp", root));
  ASSERT_TRUE(S().Prepare(Ctx(), "a", "p", root));
  ASSERT_TRUE(S().View(Ctx(), "v", "p", root));
  ASSERT_TRUE(S().Prepare(Ctx(), "p-wl-tmp", "", root));
  ASSERT_TRUE(S().Commit(Ctx(), "p-wl", "p-wl-tmp", with("1")));
  ASSERT_TRUE(S().Prepare(Ctx(), "a-wl", "p-wl", with("2")));
  ASSERT_TRUE(S().View(Ctx(), "v-wl", "p-wl", with("3")));
  ASSERT_TRUE(S().Prepare(Ctx(), "a-np-wl", "", with("2")));

  const std::vector<std::pair<std::vector<std::string>, std::set<std::string>>> cases = {
      {{R"(labels."containerd.io/gc.root"==check-walk)"},
       {"a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"}},
      {{R"(kind==active,labels."containerd.io/gc.root"==check-walk)"},
       {"a-np", "a", "a-wl", "a-np-wl"}},
      {{R"(kind==view,labels."containerd.io/gc.root"==check-walk)"}, {"v", "v-wl"}},
      {{R"(kind==committed,labels."containerd.io/gc.root"==check-walk)"}, {"p", "p-wl"}},
      {{"kind==committed"}, {"p", "p-wl"}},
      {{"name==p", "name==a-np-wl"}, {"p", "a-np-wl"}},
      {{"name==a-wl,labels.l"}, {"a-wl"}},
      {{"parent==p"}, {"a", "v"}},
      {{"parent==p-wl,kind==view"}, {"v-wl"}},
      {{R"(parent!="",labels."containerd.io/gc.root"==check-walk)"}, {"a", "v", "a-wl", "v-wl"}},
      {{"labels.l"}, {"p-wl", "a-wl", "v-wl", "a-np-wl"}},
      {{"labels.l==2"}, {"a-wl", "a-np-wl"}},
      {{"name~=^a-np"}, {"a-np", "a-np-wl"}},
  };
  for (const auto& [filters, want] : cases) {
    EXPECT_EQ(WalkNames(S(), Ctx(), filters), want) << filters.front();
  }
  auto bad = S().Walk(Ctx(), [](const snapshots::Info&) { return Ok(); }, {"name=="});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument)) << bad.error().ToString();

  // A callback may call back into the snapshotter (containerd's StatInWalk); its error stops Walk.
  int seen = 0;
  auto stopped = S().Walk(Ctx(),
                          [&](const snapshots::Info& info) -> Status {
                            auto st = S().Stat(Ctx(), info.name);
                            EXPECT_TRUE(st) << info.name;
                            if (++seen == 2) return Error(Errc::kCanceled, "enough");
                            return Ok();
                          },
                          {});
  EXPECT_EQ(seen, 2);
  ASSERT_FALSE(stopped);
  EXPECT_TRUE(stopped.error().Is(Errc::kCanceled));
}

// A new snapshot's root is 0755 and takes the owner of its parent's root.
TEST_P(SnapshotterSuite, RootModeAndOwner) {
  ASSERT_TRUE(S().Prepare(Ctx(), "a", "", {}));
  WithMounted("a", [](const std::string& dir) {
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    ASSERT_EQ(::chown(dir.c_str(), 1000, 1001), 0);
  });
  ASSERT_TRUE(S().Commit(Ctx(), "c", "a", {}));
  ASSERT_TRUE(S().Prepare(Ctx(), "b", "c", {}));
  WithMounted("b", [](const std::string& dir) {
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1001u);
  });
}

}  // namespace berth::snapshots::testsuite
