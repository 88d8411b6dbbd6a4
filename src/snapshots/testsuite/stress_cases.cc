// The suite's cases about error classes, concurrency, crash recovery and deep chains.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/fs.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::testsuite {
namespace {

template <class T>
void ExpectCode(const Result<T>& r, Errc code, const std::string& what) {
  ASSERT_FALSE(r) << what << ": expected an error";
  EXPECT_TRUE(r.error().Is(code)) << what << ": " << r.error().ToString();
}

std::set<std::string> ListNames(const std::string& dir) {
  std::set<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* de = ::readdir(d)) {
      if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
        names.insert(de->d_name);
      }
    }
    ::closedir(d);
  }
  return names;
}

}  // namespace

// Every error class of the contract, and nothing half-made left behind by a failure.
TEST_P(SnapshotterSuite, ErrorClasses) {
  ExpectCode(S().Stat(Ctx(), "nope"), Errc::kNotFound, "Stat");
  ExpectCode(S().Mounts(Ctx(), "nope"), Errc::kNotFound, "Mounts");
  ExpectCode(S().Usage(Ctx(), "nope"), Errc::kNotFound, "Usage");
  ExpectCode(S().Remove(Ctx(), "nope"), Errc::kNotFound, "Remove");
  ExpectCode(S().Commit(Ctx(), "n", "nope", {}), Errc::kNotFound, "Commit");
  ExpectCode(S().Update(Ctx(), snapshots::Info{.name = "nope"}, {}), Errc::kNotFound, "Update");

  ASSERT_TRUE(S().Prepare(Ctx(), "x", "", {}));
  ExpectCode(S().Prepare(Ctx(), "x", "", {}), Errc::kAlreadyExists, "Prepare twice");
  ExpectCode(S().View(Ctx(), "x", "", {}), Errc::kAlreadyExists, "View onto an active key");
  ExpectCode(S().Prepare(Ctx(), "y", "nope", {}), Errc::kNotFound, "Prepare on a missing parent");
  ExpectCode(S().View(Ctx(), "y", "nope", {}), Errc::kNotFound, "View on a missing parent");
  ExpectCode(S().Prepare(Ctx(), "y", "x", {}), Errc::kInvalidArgument, "Prepare on an active");
  ExpectCode(S().View(Ctx(), "y", "x", {}), Errc::kInvalidArgument, "View on an active");
  ASSERT_TRUE(S().View(Ctx(), "v", "", {}));
  ExpectCode(S().Prepare(Ctx(), "y", "v", {}), Errc::kInvalidArgument, "Prepare on a view");
  ExpectCode(S().View(Ctx(), "v", "", {}), Errc::kAlreadyExists, "View twice");
  ExpectCode(S().Prepare(Ctx(), "", "", {}), Errc::kInvalidArgument, "Prepare with no key");
  ExpectCode(S().Commit(Ctx(), "x", "x", {}), Errc::kAlreadyExists, "Commit onto its own key");
  ExpectCode(S().Walk(Ctx(), [](const snapshots::Info&) { return Ok(); }, {"kind=="}),
             Errc::kInvalidArgument, "Walk with a bad filter");

  std::set<std::string> names;
  ASSERT_TRUE(S().Walk(Ctx(),
                       [&](const snapshots::Info& info) {
                         names.insert(info.name);
                         return Ok();
                       },
                       {}));
  EXPECT_EQ(names, (std::set<std::string>{"v", "x"}));
  ASSERT_TRUE(S().Prepare(Ctx(), "y", "", {}));  // the failed attempts left nothing behind
}

// Many threads preparing distinct keys on one parent; then racing for one key.
TEST_P(SnapshotterSuite, ConcurrentPrepares) {
  ASSERT_NO_FATAL_FAILURE(CommitLayer("base", "", {{"f", "base"}}));
  constexpr int kThreads = 16;
  std::vector<Status> results(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([this, i, &results] {
        auto m = S().Prepare(Ctx(), fmt::format("c-{}", i), "base", {});
        results[i] = m ? Ok() : Status(m.error());
      });
    }
  }
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i]) << i << ": " << results[i].error().ToString();
  }
  std::set<std::string> children;
  ASSERT_TRUE(S().Walk(Ctx(),
                       [&](const snapshots::Info& info) {
                         children.insert(info.name);
                         return Ok();
                       },
                       {"parent==base"}));
  EXPECT_EQ(children.size(), static_cast<size_t>(kThreads));
  for (int i = 0; i < kThreads; ++i) {
    WithMounted(fmt::format("c-{}", i), [i](const std::string& dir) {
      EXPECT_EQ(ReadFileOrDie(dir + "/f"), "base");
      EXPECT_FALSE(Exists(dir + "/mine-" + std::to_string(i - 1)));  // writes stay private
      WriteFile(dir + "/mine-" + std::to_string(i), "x");
    });
  }

  std::atomic<int> won{0};
  std::atomic<int> exists{0};
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        auto m = S().Prepare(Ctx(), "contended", "base", {});
        if (m) {
          ++won;
        } else if (m.error().Is(Errc::kAlreadyExists)) {
          ++exists;
        }
      });
    }
  }
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(exists.load(), kThreads - 1);

  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back(
          [this, i, &results] { results[i] = S().Remove(Ctx(), fmt::format("c-{}", i)); });
    }
  }
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i]) << i << ": " << results[i].error().ToString();
  }
  ASSERT_TRUE(S().Remove(Ctx(), "contended"));
  ASSERT_TRUE(S().Remove(Ctx(), "base"));
}

// What a crash leaves behind goes at Cleanup; what snapshots use stays.
TEST_P(SnapshotterSuite, CleanupAfterCrash) {
  if (!fixture_.make_crash_leftovers) GTEST_SKIP() << GetParam().name << " has no crash hook";
  ASSERT_NO_FATAL_FAILURE(CommitLayer("keep", "", {{"f", "kept"}}));
  ASSERT_TRUE(S().Prepare(Ctx(), "active", "keep", {}));
  ASSERT_TRUE(S().View(Ctx(), "view", "keep", {}));
  ASSERT_TRUE(S().Prepare(Ctx(), "removed", "", {}));
  ASSERT_TRUE(S().Remove(Ctx(), "removed"));
  auto leftovers = fixture_.make_crash_leftovers();
  ASSERT_TRUE(leftovers) << leftovers.error().ToString();
  ASSERT_FALSE(leftovers->empty());
  for (const auto& p : *leftovers) ASSERT_TRUE(Exists(p)) << p;

  auto s = S().Cleanup(Ctx());
  ASSERT_TRUE(s) << s.error().ToString();
  for (const auto& p : *leftovers) EXPECT_FALSE(Exists(p)) << p << " survived Cleanup";
  auto again = S().Cleanup(Ctx());
  ASSERT_TRUE(again) << again.error().ToString();

  for (const char* key : {"active", "view"}) {
    WithMounted(key, [](const std::string& dir) { EXPECT_EQ(ReadFileOrDie(dir + "/f"), "kept"); });
  }
  ASSERT_TRUE(S().Prepare(Ctx(), "after", "keep", {}));
  WithMounted("after",
              [](const std::string& dir) { EXPECT_EQ(ReadFileOrDie(dir + "/f"), "kept"); });
}

// containerd's check128LayersMount: 128 layers, each mounted while it is built, then a view of
// the top (128 lower layers) reads files of layer 0 through the whole stack.
TEST_P(SnapshotterSuite, Layers128) {
  std::string parent;
  for (int i = 0; i < 128; ++i) {
    std::string key = fmt::format("prepare-layer-{}", i);
    auto mounts = S().Prepare(Ctx(), key, parent, {});
    ASSERT_TRUE(mounts) << "layer " << i << ": " << mounts.error().ToString();
    std::string dir = MountNew(*mounts);
    ASSERT_FALSE(dir.empty()) << "layer " << i;
    if (i == 0) {
      WriteFile(dir + "/bottom", "way at the bottom\n");
      WriteFile(dir + "/overwriteme", "FIRST!\n");
      ASSERT_EQ(::mkdir((dir + "/ADDHERE").c_str(), 0755), 0);
      ASSERT_EQ(::mkdir((dir + "/ONLYME").c_str(), 0755), 0);
      WriteFile(dir + "/ONLYME/bottom", "bye!\n");
    } else {
      std::string want = i == 1 ? "FIRST!\n" : fmt::format("{} WAS HERE!\n", i - 1);
      ASSERT_EQ(ReadFileOrDie(dir + "/overwriteme"), want) << "layer " << i;
      ASSERT_EQ(ReadFileOrDie(dir + "/bottom"), "way at the bottom\n") << "layer " << i;
      WriteFile(dir + "/overwriteme", fmt::format("{} WAS HERE!\n", i));
      WriteFile(dir + fmt::format("/ADDHERE/file-{}", i), "same\n");
      ASSERT_TRUE(fs::RemoveAll(dir + "/ONLYME"));
      ASSERT_EQ(::mkdir((dir + "/ONLYME").c_str(), 0755), 0);
      WriteFile(dir + fmt::format("/ONLYME/file-{}", i), "only me!\n");
    }
    Unmount(dir);
    parent = fmt::format("committed-{}", i);
    auto s = S().Commit(Ctx(), parent, key, {});
    ASSERT_TRUE(s) << "layer " << i << ": " << s.error().ToString();
  }

  ASSERT_TRUE(S().View(Ctx(), "fullview", parent, {}));
  WithMounted("fullview", [](const std::string& dir) {
    EXPECT_EQ(ReadFileOrDie(dir + "/bottom"), "way at the bottom\n");
    EXPECT_EQ(ReadFileOrDie(dir + "/overwriteme"), "127 WAS HERE!\n");
    EXPECT_EQ(ListNames(dir + "/ADDHERE").size(), 127u);
    EXPECT_EQ(ListNames(dir + "/ONLYME"), (std::set<std::string>{"file-127"}));
  });
  // And an active snapshot on top: 128 lower layers plus its upper.
  ASSERT_TRUE(S().Prepare(Ctx(), "top", parent, {}));
  WithMounted("top", [](const std::string& dir) {
    EXPECT_EQ(ReadFileOrDie(dir + "/bottom"), "way at the bottom\n");
    WriteFile(dir + "/bottom", "rewritten\n");
    EXPECT_EQ(ReadFileOrDie(dir + "/bottom"), "rewritten\n");
  });
}

}  // namespace berth::snapshots::testsuite
