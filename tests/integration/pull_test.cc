// Issue 4 acceptance with the real ctr: `ctr images pull` unpacks through berthd's snapshots and
// diff services; rootfs contents, snapshot commands, GC of snapshots, malicious layers, 128 layers.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "common/digest.h"
#include "harness.h"

namespace berth::testing {
namespace {

// Mounts `key`'s view under dir/mnt with `ctr snapshots mounts` output run through sh, as a
// user would; unmounted on destruction.
class ViewMount {
 public:
  ViewMount(const Daemon& d, const std::string& snapshotter, const std::string& key,
            const std::string& dir)
      : target_(dir) {
    ::mkdir(target_.c_str(), 0755);
    auto r = d.Ctr({"snapshots", "--snapshotter", snapshotter, "mounts", target_, key});
    cmd_ = r.out;
    if (r.exit_code != 0) {
      error_ = r.err;
      return;
    }
    auto m = Exec({"sh", "-c", r.out});
    if (m.exit_code != 0) {
      error_ = "mount failed: " + m.err + " for: " + r.out;
      return;
    }
    mounted_ = true;
  }
  ~ViewMount() {
    if (mounted_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  bool Ok() const { return mounted_; }
  const std::string& Error() const { return error_; }
  std::string Path(const std::string& rel) const { return target_ + "/" + rel; }

 private:
  std::string target_;
  std::string cmd_;
  std::string error_;
  bool mounted_ = false;
};

// The chain id of `image`'s top layer, from its config's rootfs.diff_ids chained as containerd's
// identity.ChainID does, if it is a committed snapshot of `snapshotter`; else "".
std::string TopChainId(const Daemon& d, const std::string& image, const std::string& snapshotter) {
  std::string target;  // `ctr images ls`: REF TYPE DIGEST SIZE PLATFORMS LABELS
  std::istringstream rows(d.Ctr({"images", "ls"}).out);
  for (std::string line; std::getline(rows, line);) {
    std::istringstream fields(line);
    std::string ref, type, digest;
    if (fields >> ref >> type >> digest && ref == image) target = digest;
  }
  if (target.empty()) {
    ADD_FAILURE() << image << " is not in `ctr images ls`";
    return "";
  }
  std::string manifest = d.Ctr({"content", "get", target}).out;
  std::smatch m;
  static const std::regex kConfig(
      R"re("config"\s*:\s*\{[^}]*"digest"\s*:\s*"(sha256:[0-9a-f]{64})")re");
  if (!std::regex_search(manifest, m, kConfig)) {
    ADD_FAILURE() << image << ": no config in the manifest " << target << ":\n" << manifest;
    return "";
  }
  std::string config = d.Ctr({"content", "get", m[1].str()}).out;
  static const std::regex kDiffIds(R"re("diff_ids"\s*:\s*\[([^\]]*)\])re");
  if (!std::regex_search(config, m, kDiffIds)) {
    ADD_FAILURE() << image << ": no rootfs.diff_ids in its config:\n" << config;
    return "";
  }
  std::string diff_ids = m[1].str();
  static const std::regex kDigest("sha256:[0-9a-f]{64}");
  std::string chain;
  for (std::sregex_iterator it(diff_ids.begin(), diff_ids.end(), kDigest), end; it != end; ++it) {
    chain = chain.empty() ? it->str() : Digest::FromBytes(chain + " " + it->str()).String();
  }
  auto ls = d.Ctr({"snapshots", "--snapshotter", snapshotter, "ls"});
  std::istringstream snapshots(ls.out);
  for (std::string line; std::getline(snapshots, line);) {
    std::istringstream fields(line);
    std::string key;
    if (fields >> key && key == chain && line.find("Committed") != std::string::npos) return chain;
  }
  return "";
}

void CheckMultiRootfs(const ViewMount& v) {
  EXPECT_EQ(ReadText(v.Path("data/keep/a")), "one\n");
  EXPECT_EQ(ReadText(v.Path("data/keep/c")), "three\n");
  EXPECT_EQ(ReadText(v.Path("data/gone/new")), "fresh\n");
  char target[256] = {};
  ssize_t n = ::readlink(v.Path("data/link").c_str(), target, sizeof target - 1);
  EXPECT_EQ(std::string(target, n > 0 ? n : 0), "keep/a");
  struct stat hard {};
  struct stat c {};
  ASSERT_EQ(::stat(v.Path("data/hard").c_str(), &hard), 0);
  ASSERT_EQ(::stat(v.Path("data/keep/c").c_str(), &c), 0);
  EXPECT_EQ(hard.st_ino, c.st_ino) << "data/hard is a hardlink of data/keep/c";
  struct stat st {};
  EXPECT_NE(::lstat(v.Path("data/del").c_str(), &st), 0) << "/data/del was whited out";
  EXPECT_NE(::lstat(v.Path("data/gone/b").c_str(), &st), 0) << "/data/gone is opaque";
}

class PullIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = Registry::Start().release(); }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(registry_, nullptr) << "registry with test images did not start";
    d_ = Daemon::Create();
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }
  RunResult Ok(const std::vector<std::string>& args, const std::string& ns = "") {
    auto r = d_->Ctr(args, ns);
    EXPECT_EQ(r.exit_code, 0) << "ctr failed:\n" << r.err << "\nlog:\n" << d_->Log();
    return r;
  }
  void PullAndCheck(const std::string& snapshotter) {
    Ok({"images", "pull", "--plain-http", "--snapshotter", snapshotter, registry_->Ref("multi")});
    std::string top = TopChainId(*d_, registry_->Ref("multi"), snapshotter);
    ASSERT_FALSE(top.empty()) << Ok({"snapshots", "--snapshotter", snapshotter, "ls"}).out;
    // A snapshot made outside a lease is garbage to the GC (as in containerd), and the GC the
    // pull's finished lease scheduled may run after the view exists: hold it in a lease first.
    Ok({"leases", "create", "--id", "check-view-lease"});
    {
      auto channel =
          grpc::CreateChannel("unix:" + d_->Socket(), grpc::InsecureChannelCredentials());
      auto leases = containerd::services::leases::v1::Leases::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.AddMetadata("containerd-namespace", "default");
      containerd::services::leases::v1::AddResourceRequest req;
      req.set_id("check-view-lease");
      req.mutable_resource()->set_id("check-view");
      req.mutable_resource()->set_type("snapshots/" + snapshotter);
      google::protobuf::Empty empty;
      ASSERT_TRUE(leases->AddResource(&ctx, req, &empty).ok());
    }
    Ok({"snapshots", "--snapshotter", snapshotter, "view", "check-view", top});
    {
      ViewMount v(*d_, snapshotter, "check-view", d_->Dir() + "/mnt");
      ASSERT_TRUE(v.Ok()) << v.Error();
      CheckMultiRootfs(v);
    }
    Ok({"snapshots", "--snapshotter", snapshotter, "rm", "check-view"});
    Ok({"leases", "rm", "check-view-lease"});
    auto check = Ok({"images", "check", "--snapshotter", snapshotter});
    EXPECT_NE(check.out.find("complete (6/6)"), std::string::npos) << check.out;
    EXPECT_NE(check.out.find("true"), std::string::npos) << "unpacked:\n" << check.out;
  }

  static Registry* registry_;
  std::unique_ptr<Daemon> d_;
};

Registry* PullIT::registry_ = nullptr;

TEST_F(PullIT, PullMultiOverlayfs) { PullAndCheck("overlayfs"); }

TEST_F(PullIT, PullMultiNative) { PullAndCheck("native"); }

TEST_F(PullIT, SnapshotCommandsAndRemoveOrdering) {
  Ok({"images", "pull", "--plain-http", registry_->Ref("multi")});
  auto ls = Ok({"snapshots", "ls"});
  EXPECT_NE(ls.out.find("KEY"), std::string::npos);
  EXPECT_NE(ls.out.find("Committed"), std::string::npos);
  auto tree = Ok({"snapshots", "tree"});
  EXPECT_FALSE(tree.out.empty());
  std::string top = TopChainId(*d_, registry_->Ref("multi"), "overlayfs");
  ASSERT_FALSE(top.empty());
  Ok({"snapshots", "prepare", "work", top});
  auto usage = Ok({"snapshots", "usage", "work"});
  EXPECT_NE(usage.out.find("work"), std::string::npos) << usage.out;
  auto mounts = Ok({"snapshots", "mounts", "/mnt/x", "work"});
  EXPECT_NE(mounts.out.find("mount -t overlay overlay /mnt/x"), std::string::npos) << mounts.out;
  EXPECT_NE(mounts.out.find("upperdir="), std::string::npos);
  auto rm_parent = d_->Ctr({"snapshots", "rm", top});
  EXPECT_NE(rm_parent.exit_code, 0);
  EXPECT_NE(rm_parent.err.find("failed precondition"), std::string::npos) << rm_parent.err;
  Ok({"snapshots", "commit", "work-done", "work"});
  auto info = Ok({"snapshots", "info", "work-done"});
  EXPECT_NE(info.out.find("\"Committed\""), std::string::npos) << info.out;
  Ok({"snapshots", "rm", "work-done"});
}

TEST_F(PullIT, ImageRemoveSyncCollectsSnapshotsAndBlobs) {
  Ok({"images", "pull", "--plain-http", registry_->Ref("multi")});
  EXPECT_NE(Ok({"snapshots", "ls"}).out.find("Committed"), std::string::npos);
  Ok({"images", "rm", "--sync", registry_->Ref("multi")});
  EXPECT_EQ(Ok({"snapshots", "ls"}).out, "KEY PARENT KIND \n");
  EXPECT_EQ(Ok({"content", "ls", "-q"}).out, "");
  std::string snaps = d_->Root() + "/io.containerd.snapshotter.v1.overlayfs/snapshots";
  auto left = Exec({"sh", "-c", "ls -A " + snaps + " | grep -v '^new-' | wc -l"});
  EXPECT_EQ(left.out, "0\n") << "snapshot directories removed";
}

TEST_F(PullIT, OneHundredTwentyEightLayers) {
  Ok({"images", "pull", "--plain-http", registry_->Ref("layers128")});
  // `ctr images mount` mounts the view in the ctr process (Go's mount.All): the overlay
  // snapshotter's short lowerdir links keep the option string mountable.
  std::string target = d_->Dir() + "/mnt128";
  ::mkdir(target.c_str(), 0755);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } guard{target};
  Ok({"images", "mount", registry_->Ref("layers128"), target});
  struct stat st {};
  EXPECT_EQ(::stat((target + "/l/1").c_str(), &st), 0) << "a file from the first layer";
  EXPECT_EQ(::stat((target + "/l/128").c_str(), &st), 0) << "a file from the last layer";
  EXPECT_EQ(ReadText(target + "/l/64"), "64\n");
  Ok({"images", "unmount", target});
}

TEST_F(PullIT, MaliciousLayersAreRefused) {
  // Per process (the layout and the canary its symlink points at): runs at once do not meet.
  const std::string pid = std::to_string(::getpid());
  std::string evil = std::string(BERTH_BUILD_DIR) + "/fixtures-evil-" + pid;
  std::string canary = "/tmp/berth-evil-canary-" + pid;
  struct RemoveAtEnd {
    std::vector<std::string> paths;
    ~RemoveAtEnd() {
      for (const auto& p : paths) (void)fs::RemoveAll(p);
    }
  } remove_at_end{{evil, canary}};
  auto built =
      Exec({std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/build-evil.sh", evil, canary});
  ASSERT_EQ(built.exit_code, 0) << built.err;
  ASSERT_TRUE(registry_->Push(evil + "/oci"));
  (void)fs::RemoveAll(canary);
  ASSERT_EQ(::mkdir(canary.c_str(), 0755), 0);
  for (const char* tag :
       {"evil-dotdot", "evil-abs", "evil-symlink", "evil-hardlink", "evil-whiteout"}) {
    SCOPED_TRACE(tag);
    auto r = d_->Ctr({"images", "pull", "--plain-http", registry_->Ref(tag)});
    EXPECT_NE(r.exit_code, 0) << "pull of a hostile layer must fail:\n" << r.out;
    EXPECT_NE(r.err.find("apply layer"), std::string::npos) << r.err;
    EXPECT_EQ(Exec({"ls", "-A", canary}).out, "") << "nothing written outside the root";
    struct stat st {};
    EXPECT_NE(::lstat("/berth-escape-abs", &st), 0);
    EXPECT_NE(::lstat((d_->Root() + "/../escape-dotdot").c_str(), &st), 0);
    EXPECT_EQ(Ok({"version"}).exit_code, 0) << "berthd keeps serving";
  }
  struct stat pw {};
  EXPECT_EQ(::stat("/etc/passwd", &pw), 0);
}

// btrfs on a loop device: the btrfs snapshotter only loads on a btrfs root.
class BtrfsRoot {
 public:
  explicit BtrfsRoot(const std::string& dir) : dir_(dir) {
    std::string img = dir + "/btrfs.img";
    auto t = Exec({"truncate", "-s", "1G", img});
    if (t.exit_code != 0) {
      error_ = "truncate " + img + ": " + t.err;
      return;
    }
    // btrfs-progs is installed by `make deps` (scripts/install-deps.sh): failing here is breakage.
    auto mkfs = Exec({"mkfs.btrfs", "-q", img});
    if (mkfs.exit_code != 0) {
      error_ = "mkfs.btrfs (exit " + std::to_string(mkfs.exit_code) + "): " + mkfs.err;
      return;
    }
    // No free loop device, or a kernel without btrfs: limits of the host.
    auto loop = Exec({"losetup", "-f", "--show", img});
    if (loop.exit_code != 0) {
      error_ = "no loop device: " + loop.err;
      host_limit_ = true;
      return;
    }
    loop_ = loop.out.substr(0, loop.out.find('\n'));
    ::mkdir((dir + "/root").c_str(), 0711);
    auto m = Exec({"mount", loop_, dir + "/root"});
    if (m.exit_code != 0) {
      error_ = "mount btrfs: " + m.err;
      host_limit_ = true;
      return;
    }
    mounted_ = true;
  }
  // Called before unmounting (stop the daemon that uses the filesystem).
  std::function<void()> before_unmount;
  ~BtrfsRoot() {
    if (before_unmount) before_unmount();
    if (mounted_) Exec({"umount", "-R", dir_ + "/root"});
    if (!loop_.empty()) Exec({"losetup", "-d", loop_});
  }
  bool Ok() const { return mounted_; }
  // Not Ok() because the host cannot (no loop device, no btrfs in the kernel), not a breakage.
  bool HostLimit() const { return host_limit_; }
  const std::string& Error() const { return error_; }

 private:
  std::string dir_;
  std::string loop_;
  std::string error_;
  bool mounted_ = false;
  bool host_limit_ = false;
};

TEST_F(PullIT, PullMultiBtrfs) {
  d_->Stop();
  auto bd = Daemon::Create();
  BtrfsRoot root(bd->Dir());
  if (!root.Ok()) {
    ASSERT_TRUE(root.HostLimit()) << "cannot make a btrfs loop filesystem: " << root.Error();
    GTEST_SKIP() << "this host cannot mount a btrfs loop filesystem: " << root.Error();
  }
  root.before_unmount = [this] { d_->Stop(); };
  ASSERT_TRUE(bd->Start()) << bd->Log();
  auto plugins = bd->Ctr({"plugins", "ls", "id==btrfs"});
  ASSERT_NE(plugins.out.find(" ok"), std::string::npos) << plugins.out;
  std::swap(d_, bd);  // d_ is the btrfs daemon now; `root` stops it before unmounting
  PullAndCheck("btrfs");
  Ok({"images", "rm", "--sync", registry_->Ref("multi")});
}

}  // namespace
}  // namespace berth::testing

namespace berth::testing {
namespace {

// A snapshotter in another process (berth-snapshotter, serving the snapshots API on a unix
// socket), used by berthd through [proxy_plugins].
TEST(ProxySnapshotterIT, CtrDrivesARemoteSnapshotter) {
  auto dir = fs::TempDir::Create("berth-proxy-");
  ASSERT_TRUE(dir);
  std::string sock = dir->Path() + "/snap.sock";
  auto server =
      Background::Start({BinPath("berth-snapshotter"), sock, dir->Path() + "/root", "native"},
                        dir->Path() + "/snapshotter.log");
  ASSERT_TRUE(server);
  for (int i = 0; i < 200 && ::access(sock.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto d = Daemon::Create({.extra_config = "[proxy_plugins.remote]\n  type = \"snapshot\"\n"
                                           "  address = \"" +
                                           sock + "\"\n"});
  ASSERT_TRUE(d->Start()) << d->Log();
  auto plugins = d->Ctr({"plugins", "ls", "id==remote"});
  EXPECT_NE(plugins.out.find("io.containerd.snapshotter.v1    remote"), std::string::npos)
      << plugins.out;
  EXPECT_NE(plugins.out.find(" ok"), std::string::npos) << plugins.out;
  auto sn = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"snapshots", "--snapshotter", "remote"});
    auto r = d->Ctr(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r;
  };
  sn({"prepare", "base-active"});
  sn({"commit", "base", "base-active"});
  sn({"prepare", "child", "base"});
  auto ls = sn({"ls"});
  EXPECT_NE(ls.out.find("child"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("Committed"), std::string::npos) << ls.out;
  auto rm_parent = d->Ctr({"snapshots", "--snapshotter", "remote", "rm", "base"});
  EXPECT_NE(rm_parent.exit_code, 0);
  EXPECT_NE(rm_parent.err.find("failed precondition"), std::string::npos) << rm_parent.err;
  sn({"rm", "child"});
  sn({"rm", "base"});
  d->Stop();
}

}  // namespace
}  // namespace berth::testing
