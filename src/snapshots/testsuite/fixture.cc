#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/mount.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::testsuite {

std::string FactoryName(const testing::TestParamInfo<SnapshotterFactory>& info) {
  return info.param.name;
}

void PrintTo(const SnapshotterFactory& factory, std::ostream* os) { *os << factory.name; }

void SnapshotterSuite::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "the snapshotter suite mounts: it needs root";
  // Short names: overlay mount options carry these paths.
  auto tmp = fs::TempDir::Create("ss-");
  ASSERT_TRUE(tmp) << tmp.error().ToString();
  tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
  root_ = tmp_->Path() + "/r";
  work_ = tmp_->Path() + "/w";
  std::string scratch = tmp_->Path() + "/s";
  for (const auto& d : {root_, work_, scratch}) ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
  auto fixture = GetParam().create(root_, scratch);
  if (!fixture && GetParam().host_dependent && fixture.error().Is(Errc::kUnavailable)) {
    GTEST_SKIP() << fixture.error().ToString();
  }
  ASSERT_TRUE(fixture) << fixture.error().ToString();
  fixture_ = std::move(*fixture);
  ASSERT_NE(fixture_.snapshotter, nullptr);
}

void SnapshotterSuite::TearDown() {
  // Whatever the test left mounted (a failed assertion returns early), newest first.
  for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) {
    if (auto s = mount::UnmountAll(*it); !s) ADD_FAILURE() << s.error().ToString();
  }
  mounted_.clear();
  fixture_.snapshotter.reset();
  if (fixture_.cleanup) fixture_.cleanup();
  tmp_.reset();
}

std::string SnapshotterSuite::MountNew(const std::vector<mount::Mount>& mounts) {
  std::string target = work_ + "/m" + std::to_string(next_mount_++);
  EXPECT_EQ(::mkdir(target.c_str(), 0755), 0) << target;
  mounted_.push_back(target);
  if (auto s = mount::MountAll(mounts, target); !s) {
    ADD_FAILURE() << "mount: " << s.error().ToString();
    mounted_.pop_back();
    return "";
  }
  return target;
}

void SnapshotterSuite::Unmount(const std::string& target) {
  if (target.empty()) return;
  auto s = mount::UnmountAll(target);
  EXPECT_TRUE(s) << s.error().ToString();
  if (s) std::erase(mounted_, target);
}

void SnapshotterSuite::WithMounted(const std::string& key,
                                   const std::function<void(const std::string&)>& fn) {
  auto mounts = S().Mounts(Ctx(), key);
  ASSERT_TRUE(mounts) << mounts.error().ToString();
  std::string dir = MountNew(*mounts);
  ASSERT_FALSE(dir.empty());
  fn(dir);
  Unmount(dir);
}

void SnapshotterSuite::CommitLayer(const std::string& name, const std::string& parent,
                                   const std::vector<std::pair<std::string, std::string>>& files) {
  std::string key = name + "-active";
  auto mounts = S().Prepare(Ctx(), key, parent, {});
  ASSERT_TRUE(mounts) << mounts.error().ToString();
  std::string dir = MountNew(*mounts);
  ASSERT_FALSE(dir.empty());
  for (const auto& [path, content] : files) {
    if (path.ends_with('/')) {
      ASSERT_EQ(::mkdir((dir + "/" + path).c_str(), 0755), 0) << path;
    } else {
      WriteFile(dir + "/" + path, content);
    }
  }
  Unmount(dir);
  auto s = S().Commit(Ctx(), name, key, {});
  ASSERT_TRUE(s) << s.error().ToString();
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.Valid()) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd.Get(), content.data(), content.size()), static_cast<ssize_t>(content.size()))
      << path;
}

std::string ReadFileOrDie(const std::string& path) {
  auto data = fs::ReadFile(path);
  EXPECT_TRUE(data) << data.error().ToString();
  return data ? *data : std::string();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace berth::snapshots::testsuite
