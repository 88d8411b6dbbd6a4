#include "snapshots/btrfs/btrfs.h"

#include <btrfsutil.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/mount.h"
#include "plugin/plugin.h"
#include "snapshots/testsuite/testsuite.h"

extern char** environ;

namespace berth::snapshots::btrfs {
namespace {

using testsuite::Fixture;
using testsuite::SnapshotterFactory;
using testsuite::SnapshotterSuite;

// Runs argv to completion with output discarded; its exit status.
Result<int> Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));  // NOLINT: C API
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoError(rc, "spawn " + argv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError(errno, "wait for " + argv[0]);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A loop device bound to an image file. LO_FLAGS_AUTOCLEAR: the kernel detaches it once the last
// user (this fd, a mount) is gone, so even a crashed test leaks nothing after its unmount.
class LoopDevice {
 public:
  static Result<std::unique_ptr<LoopDevice>> Attach(const std::string& image) {
    fs::UniqueFd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!ctl.Valid()) {
      return Unavailable(fmt::format("loop devices unavailable: open /dev/loop-control: {}",
                                     std::strerror(errno)));
    }
    fs::UniqueFd img(::open(image.c_str(), O_RDWR | O_CLOEXEC));
    if (!img.Valid()) return ErrnoError(errno, "open " + image);
    for (int attempt = 0; attempt < 32; ++attempt) {
      int n = ::ioctl(ctl.Get(), LOOP_CTL_GET_FREE);
      if (n < 0) {
        return Unavailable(
            fmt::format("loop devices unavailable: LOOP_CTL_GET_FREE: {}", std::strerror(errno)));
      }
      std::string path = fmt::format("/dev/loop{}", n);
      fs::UniqueFd dev(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (!dev.Valid()) {
        return Unavailable(
            fmt::format("loop devices unavailable: open {}: {}", path, std::strerror(errno)));
      }
      struct loop_config config {};
      config.fd = static_cast<__u32>(img.Get());
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
      std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), image.c_str(),
                   LO_NAME_SIZE - 1);
      if (::ioctl(dev.Get(), LOOP_CONFIGURE, &config) == 0) {
        return std::unique_ptr<LoopDevice>(new LoopDevice(std::move(dev), path));
      }
      if (errno != EBUSY) {
        return Unavailable(fmt::format("loop devices unavailable: LOOP_CONFIGURE {}: {}", path,
                                       std::strerror(errno)));
      }
      // Another process took that device between GET_FREE and CONFIGURE: try the next.
    }
    return Unavailable("loop devices unavailable: no free device after 32 attempts");
  }
  ~LoopDevice() {
    // Fails with EBUSY while still mounted; autoclear then detaches it at the unmount.
    (void)::ioctl(fd_.Get(), LOOP_CLR_FD, 0);
  }
  const std::string& Path() const { return path_; }

 private:
  LoopDevice(fs::UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  fs::UniqueFd fd_;
  std::string path_;
};

// A fresh 512 MiB btrfs (sparse image, loop device) mounted on `mountpoint`; unmounted and
// detached when destroyed.
class BtrfsVolume {
 public:
  static Result<std::unique_ptr<BtrfsVolume>> Create(const std::string& mountpoint,
                                                     const std::string& scratch) {
    std::string image = scratch + "/btrfs.img";
    {
      fs::UniqueFd fd(::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd.Valid()) return ErrnoError(errno, "create " + image);
      if (::ftruncate(fd.Get(), off_t{512} << 20) != 0) return ErrnoError(errno, "size " + image);
    }
    auto mkfs = Run({"mkfs.btrfs", "-q", "-f", image});
    if (!mkfs && mkfs.error().Is(Errc::kNotFound)) {
      return Error(Errc::kFailedPrecondition,
                   "mkfs.btrfs is not installed (btrfs-progs: make deps installs it)");
    }
    if (!mkfs) return std::move(mkfs).error();
    if (*mkfs != 0) return Unknown(fmt::format("mkfs.btrfs {} exited {}", image, *mkfs));
    BERTH_ASSIGN_OR_RETURN(auto loop, LoopDevice::Attach(image));
    if (::mount(loop->Path().c_str(), mountpoint.c_str(), "btrfs", 0, nullptr) != 0) {
      if (errno == ENODEV) return Unavailable("the kernel has no btrfs support");
      return ErrnoError(errno, fmt::format("mount {} on {}", loop->Path(), mountpoint));
    }
    return std::unique_ptr<BtrfsVolume>(new BtrfsVolume(mountpoint, std::move(loop)));
  }
  ~BtrfsVolume() {
    if (auto s = mount::UnmountAll(mountpoint_); !s) ADD_FAILURE() << s.error().ToString();
  }
  const std::string& Device() const { return loop_->Path(); }

 private:
  BtrfsVolume(std::string mountpoint, std::unique_ptr<LoopDevice> loop)
      : mountpoint_(std::move(mountpoint)), loop_(std::move(loop)) {}
  std::string mountpoint_;
  std::unique_ptr<LoopDevice> loop_;  // after the unmount: destroyed last
};

Status CreateSubvolume(const std::string& path) {
  errno = 0;
  auto err = btrfs_util_create_subvolume(path.c_str(), 0, nullptr, nullptr);
  if (err != BTRFS_UTIL_OK) return ErrnoError(errno, "create subvolume " + path);
  return Ok();
}

Result<Fixture> MakeBtrfs(const std::string& root, const std::string& scratch) {
  BERTH_ASSIGN_OR_RETURN(auto volume, BtrfsVolume::Create(root, scratch));
  // The snapshotter lives in a subdirectory, as under a daemon root.
  BERTH_ASSIGN_OR_RETURN(auto s, Snapshotter::Open(root + "/io.containerd.snapshotter.v1.btrfs"));
  std::string r = s->Root();
  Fixture f;
  f.snapshotter = std::move(s);
  std::shared_ptr<BtrfsVolume> shared(std::move(volume));
  f.cleanup = [shared]() mutable { shared.reset(); };
  f.make_crash_leftovers = [r]() -> Result<std::vector<std::string>> {
    // A subvolume created for an id whose metadata never committed, an interrupted delete, an
    // active subvolume left after its commit, and a plain directory someone left.
    std::vector<std::string> out{r + "/active/4242", r + "/view/rm-9", r + "/active/1",
                                 r + "/snapshots/new-crash1"};
    BERTH_TRY(CreateSubvolume(out[0]));
    testsuite::WriteFile(out[0] + "/file", "orphan");
    BERTH_TRY(CreateSubvolume(out[1]));
    BERTH_TRY(CreateSubvolume(out[2]));  // id 1 is "keep", committed: its active copy is stale
    BERTH_TRY(fs::MkdirAll(out[3] + "/etc", 0755));
    return out;
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Btrfs, SnapshotterSuite,
                         testing::Values(SnapshotterFactory{"btrfs", MakeBtrfs,
                                                            /*host_dependent=*/true}),
                         testsuite::FactoryName);

TEST(BtrfsTest, SkipsOffBtrfs) {
  auto tmp = fs::TempDir::Create("btrfs-");
  ASSERT_TRUE(tmp);
  auto s = Snapshotter::Open(tmp->Path() + "/root");
  if (s) GTEST_SKIP() << "the temp directory is on btrfs";
  EXPECT_TRUE(plugin::IsSkip(s.error())) << s.error().ToString();
  EXPECT_NE(s.error().What().find("must be a btrfs filesystem to be used with the btrfs "
                                  "snapshotter"),
            std::string::npos)
      << s.error().ToString();
  EXPECT_NE(s.error().What().find("path " + tmp->Path() + "/root ("), std::string::npos);
}

TEST(BtrfsTest, MountShapesAreContainerds) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto tmp = fs::TempDir::Create("btrfs-");
  ASSERT_TRUE(tmp);
  std::string mnt = tmp->Path() + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  auto volume = BtrfsVolume::Create(mnt, tmp->Path());
  if (!volume && volume.error().Is(Errc::kUnavailable)) GTEST_SKIP() << volume.error().ToString();
  ASSERT_TRUE(volume) << volume.error().ToString();
  {
    auto s = Snapshotter::Open(mnt + "/root");
    ASSERT_TRUE(s) << s.error().ToString();
    EXPECT_EQ((*s)->Device(), (*volume)->Device());
    Context ctx;
    auto a = (*s)->Prepare(ctx, "a", "", {});
    ASSERT_TRUE(a) << a.error().ToString();
    ASSERT_EQ(a->size(), 1u);
    EXPECT_EQ((*a)[0].type, "btrfs");
    EXPECT_EQ((*a)[0].source, (*volume)->Device());
    uint64_t id = 0;
    ASSERT_EQ(btrfs_util_subvolume_id(((*s)->Root() + "/active/1").c_str(), &id), BTRFS_UTIL_OK);
    EXPECT_EQ((*a)[0].options, (std::vector<std::string>{fmt::format("subvolid={}", id)}));
    ASSERT_TRUE((*s)->Commit(ctx, "c", "a", {}));
    EXPECT_NE(::access(((*s)->Root() + "/active/1").c_str(), F_OK), 0);
    bool ro = false;
    ASSERT_EQ(btrfs_util_get_subvolume_read_only(((*s)->Root() + "/snapshots/1").c_str(), &ro),
              BTRFS_UTIL_OK);
    EXPECT_TRUE(ro);
    auto v = (*s)->View(ctx, "v", "c", {});
    ASSERT_TRUE(v);
    EXPECT_EQ((*v)[0].options.back(), "ro");
    ASSERT_TRUE((*s)->Remove(ctx, "v"));
    EXPECT_NE(::access(((*s)->Root() + "/view/2").c_str(), F_OK), 0);

    // An active snapshot's usage is what it adds over its parent, not the parent's data.
    ASSERT_TRUE((*s)->Prepare(ctx, "big", "c", {}));
    testsuite::WriteFile((*s)->Root() + "/active/3/big", std::string(1 << 20, 'b'));
    ASSERT_TRUE((*s)->Commit(ctx, "c-big", "big", {}));
    ASSERT_TRUE((*s)->Prepare(ctx, "child", "c-big", {}));
    auto base = (*s)->Usage(ctx, "child");
    ASSERT_TRUE(base) << base.error().ToString();
    EXPECT_EQ(base->inodes, 0);
    ASSERT_EQ(::mkdir(((*s)->Root() + "/active/4/d").c_str(), 0755), 0);
    testsuite::WriteFile((*s)->Root() + "/active/4/d/small", std::string(64 << 10, 's'));
    auto grown = (*s)->Usage(ctx, "child");
    ASSERT_TRUE(grown) << grown.error().ToString();
    EXPECT_EQ(grown->inodes, 2);
    EXPECT_GE(grown->size, 64 << 10);
    EXPECT_LT(grown->size, 1 << 20);
  }
  volume->reset();
}

}  // namespace
}  // namespace berth::snapshots::btrfs
