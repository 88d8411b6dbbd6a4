// `berth snapshots ...` and `berth images mount|unmount` against the real ctr on the same berthd:
// same output for the same state, same errors; images mount unpacks (berth's own unpacker) and
// mounts the multi fixture image with the expected rootfs.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace berth::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// stderr without the program prefix, so ctr's and berth's messages compare.
std::string Message(const RunResult& r, std::string_view prog) {
  std::string prefix = std::string(prog) + ": ";
  auto pos = r.err.rfind(prefix);
  if (pos == std::string::npos) return r.err;
  return r.err.substr(pos + prefix.size());
}

// Snapshot directories differ between two snapshots created the same way:
// <root>/snapshots/<id>[/...].
std::string NormalizeIds(const std::string& text) {
  static const std::regex kId("/snapshots/[0-9]+\\b");
  return std::regex_replace(text, kId, "/snapshots/N");
}

// Comma-joined labels as a set (ctr prints them in Go's random map order).
std::set<std::string> LabelSet(const std::string& out) {
  std::set<std::string> s;
  std::string line = out.substr(0, out.find('\n'));
  size_t start = 0;
  while (start <= line.size()) {
    size_t comma = line.find(',', start);
    if (comma == std::string::npos) comma = line.size();
    if (comma > start) s.insert(line.substr(start, comma - start));
    start = comma + 1;
  }
  return s;
}

bool IsMountPoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == path) return true;
  }
  return false;
}

// Unmounts whatever a test left mounted on its targets (before the daemon's dir is removed).
class MountGuard {
 public:
  void Add(const std::string& path) { paths_.push_back(path); }
  ~MountGuard() {
    for (const auto& p : paths_) {
      for (int i = 0; i < 8 && IsMountPoint(p); ++i) ::umount2(p.c_str(), MNT_DETACH);
    }
  }

 private:
  std::vector<std::string> paths_;
};

void CheckMultiRootfs(const std::string& root) {
  EXPECT_EQ(ReadText(root + "/data/keep/a"), "one\n");
  EXPECT_EQ(ReadText(root + "/data/keep/c"), "three\n");
  EXPECT_EQ(ReadText(root + "/data/gone/new"), "fresh\n");
  char target[256] = {};
  ssize_t n = ::readlink((root + "/data/link").c_str(), target, sizeof target - 1);
  EXPECT_EQ(std::string(target, n > 0 ? static_cast<size_t>(n) : 0), "keep/a");
  struct stat hard {};
  struct stat c {};
  ASSERT_EQ(::stat((root + "/data/hard").c_str(), &hard), 0);
  ASSERT_EQ(::stat((root + "/data/keep/c").c_str(), &c), 0);
  EXPECT_EQ(hard.st_ino, c.st_ino) << "data/hard is a hardlink of data/keep/c";
  struct stat st {};
  EXPECT_NE(::lstat((root + "/data/del").c_str(), &st), 0) << "/data/del was whited out";
  EXPECT_NE(::lstat((root + "/data/gone/b").c_str(), &st), 0) << "/data/gone is opaque";
}

// Committed rows of `snapshots ls` ("KEY PARENT"), for comparing unpacked chains.
std::set<std::string> CommittedRows(const std::string& ls) {
  std::set<std::string> rows;
  static const std::regex kRow("^(\\S+)\\s+(\\S*)\\s+Committed\\s*$");
  for (const auto& line : Lines(ls)) {
    std::smatch m;
    if (std::regex_match(line, m, kRow)) rows.insert(m[1].str() + " " + m[2].str());
  }
  return rows;
}

class CliSnapshotsIT : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    Daemon::Options options;
    options.extra_config =
        "[plugins.\"io.containerd.gc.v1.scheduler\"]\n  startup_delay = \"1h\"\n";
    d_ = Daemon::Create(std::move(options));
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }

  std::vector<std::string> Args(std::vector<std::string> args) const {
    args.insert(args.begin(), {"snapshots", "--snapshotter", GetParam()});
    return args;
  }
  RunResult Ctr(const std::vector<std::string>& args) {
    auto r = d_->Ctr(Args(args));
    EXPECT_EQ(r.exit_code, 0) << "ctr " << ::testing::PrintToString(args) << ":\n"
                              << r.err << "\nlog:\n"
                              << d_->Log();
    return r;
  }
  RunResult Berth(const std::vector<std::string>& args) {
    auto r = d_->Berth(Args(args));
    EXPECT_EQ(r.exit_code, 0) << "berth " << ::testing::PrintToString(args) << ":\n" << r.err;
    return r;
  }
  void ExpectSame(const std::vector<std::string>& args) {
    auto c = Ctr(args);
    auto b = Berth(args);
    EXPECT_EQ(b.out, c.out) << ::testing::PrintToString(args);
  }
  void ExpectSameError(const std::vector<std::string>& args) {
    auto c = d_->Ctr(Args(args));
    auto b = d_->Berth(Args(args));
    EXPECT_EQ(c.exit_code, 1) << c.out;
    EXPECT_EQ(b.exit_code, 1) << b.out;
    EXPECT_EQ(Message(b, "berth"), Message(c, "ctr")) << ::testing::PrintToString(args);
  }
  // The writable directory behind an active snapshot: a bind source or the overlay upperdir.
  std::string WritableDir(const std::string& key) {
    auto r = Ctr({"mounts", "/unused", key});
    std::smatch m;
    static const std::regex kUpper("upperdir=([^,\\s]+)");
    static const std::regex kBind("^mount -t bind (\\S+) ");
    if (std::regex_search(r.out, m, kUpper)) return m[1];
    if (std::regex_search(r.out, m, kBind)) return m[1];
    ADD_FAILURE() << "no writable dir in: " << r.out;
    return "";
  }

  std::unique_ptr<Daemon> d_;
};

TEST_P(CliSnapshotsIT, SameOutputAsCtr) {
  // base (ctr) <- child (berth); views by both.
  EXPECT_EQ(Ctr({"prepare", "base"}).out, "");
  std::string base_dir = WritableDir("base");
  ASSERT_FALSE(base_dir.empty());
  ASSERT_TRUE(fs::MkdirAll(base_dir + "/etc", 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(base_dir + "/etc/hello", "hello world\n"));
  ASSERT_TRUE(fs::WriteFileAtomic(base_dir + "/big", std::string(70000, 'x')));
  EXPECT_EQ(Ctr({"commit", "base-c", "base"}).out, "");

  auto bp = Berth({"prepare", "-t", "/mnt/t", "--mounts", "child", "base-c"});
  auto cp = Ctr({"prepare", "-t", "/mnt/t", "--mounts", "child2", "base-c"});
  EXPECT_EQ(NormalizeIds(bp.out), NormalizeIds(cp.out));
  EXPECT_NE(bp.out.find("mount -t "), std::string::npos) << bp.out;
  EXPECT_NE(bp.out.find("\"Options\": ["), std::string::npos) << bp.out;
  std::string child_dir = WritableDir("child");
  ASSERT_FALSE(child_dir.empty());
  ASSERT_TRUE(fs::WriteFileAtomic(child_dir + "/child-file", "from child\n"));
  EXPECT_EQ(Berth({"commit", "child-c", "child"}).out, "");

  auto bv = Berth({"view", "--mounts", "-t", "/mnt/v", "v-berth", "child-c"});
  auto cv = Ctr({"view", "--mounts", "-t", "/mnt/v", "v-ctr", "child-c"});
  EXPECT_EQ(NormalizeIds(bv.out), NormalizeIds(cv.out));
  // Views carry no gc.root label: keep them from the collector while the test runs.
  Ctr({"label", "v-berth", "containerd.io/gc.root=test"});
  Ctr({"label", "v-ctr", "containerd.io/gc.root=test"});
  Ctr({"label", "child2", "containerd.io/gc.root=test"});

  ExpectSame({"ls"});
  ExpectSame({"list"});
  ExpectSame({"tree"});
  for (const char* key : {"base-c", "child-c", "child2", "v-berth", "v-ctr"}) {
    ExpectSame({"info", key});
  }
  for (const char* key : {"child2", "v-berth", "v-ctr"}) {
    ExpectSame({"mounts", "/mnt/x", key});
  }
  ExpectSame({"usage"});
  ExpectSame({"usage", "base-c", "child-c"});
  ExpectSame({"usage", "-b", "base-c"});
  ExpectSame({"m", "/mnt/y", "child2"});

  // Labels: berth sets, ctr reads (and the other way round).
  auto bl = Berth({"label", "base-c", "a=b", "c=d"});
  EXPECT_EQ(LabelSet(bl.out), LabelSet(Ctr({"label", "base-c"}).out));
  EXPECT_EQ(LabelSet(bl.out).count("a=b"), 1u) << bl.out;
  auto cl = Ctr({"label", "base-c", "c="});
  EXPECT_EQ(LabelSet(Berth({"label", "base-c"}).out), LabelSet(cl.out));
  EXPECT_EQ(LabelSet(cl.out).count("c=d"), 0u) << cl.out;
  ExpectSame({"info", "base-c"});

  // Diffs: the layer blob, byte for byte. Both tools write the same blob; --keep roots it, so
  // the second writer's AlreadyExists cannot race the collection that the first one's lease
  // deletion schedules (DiffWithoutKeep covers the unrooted path).
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"diff", "--keep", "child-c"},
        {"diff", "--keep", "base-c", "child-c"},
        {"diff", "--keep", "child2"},
        {"diff", "--keep", "--media-type", "application/vnd.oci.image.layer.v1.tar", "base-c",
         "child2"}}) {
    auto c = Ctr(args);
    auto b = Berth(args);
    EXPECT_FALSE(c.out.empty());
    EXPECT_TRUE(b.out == c.out) << ::testing::PrintToString(args) << ": " << b.out.size()
                                << " bytes vs ctr's " << c.out.size();
  }
  // The temporary views of diff are gone again.
  ExpectSame({"ls"});

  ExpectSameError({"info", "missing"});
  ExpectSameError({"prepare", "child2", "base-c"});
  ExpectSameError({"prepare", "x", "child2"});
  ExpectSameError({"prepare", "x", "missing"});
  ExpectSameError({"view", "child2", "base-c"});
  ExpectSameError({"commit", "y", "base-c"});
  ExpectSameError({"rm", "base-c"});
  ExpectSameError({"rm", "missing"});
  ExpectSameError({"mounts", "/mnt", "base-c"});

  EXPECT_EQ(Berth({"rm", "v-berth", "v-ctr"}).out, "");
  EXPECT_EQ(Berth({"delete", "child2"}).out, "");
  ExpectSame({"ls"});
  ExpectSame({"tree"});
}

TEST_P(CliSnapshotsIT, DiffKeepLabels) {
  Ctr({"prepare", "k"});
  std::string dir = WritableDir("k");
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/f", "data\n"));
  auto b = Berth({"diff", "--keep", "--label", "x=y", "--label", "z", "k"});
  ASSERT_FALSE(b.out.empty());
  auto content = d_->Ctr({"content", "ls"});
  bool found = false;
  for (const auto& line : Lines(content.out)) {
    if (line.find("containerd.io/gc.root=") != std::string::npos &&
        line.find("x=y") != std::string::npos && line.find("z=true") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << content.out;
}

TEST_P(CliSnapshotsIT, DiffWithoutKeep) {
  Ctr({"prepare", "k"});
  std::string dir = WritableDir("k");
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/f", "data\n"));
  // A fresh blob under berth's temporary lease; read back before the lease goes.
  auto b = Berth({"diff", "k"});
  ASSERT_FALSE(b.out.empty());
  auto tar = Exec({"tar", "-tzf", "-"}, b.out);
  EXPECT_EQ(tar.exit_code, 0) << tar.err;
  EXPECT_EQ(tar.out, "f\n");
  // The lease is gone again.
  EXPECT_EQ(Lines(d_->Ctr({"leases", "ls"}).out).size(), 1u);
}

// `snapshots unpack <manifest>` makes the image's layer snapshots as ctr's does: same output,
// same committed snapshots.
TEST_P(CliSnapshotsIT, UnpackAsCtr) {
  auto imported = d_->Ctr({"images", "import", "--no-unpack", Fixtures() + "/busybox-oci.tar"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  // The image's manifest: its target, or the first entry of its index.
  std::string target;
  for (const auto& line : Lines(d_->Ctr({"images", "ls"}).out)) {
    std::istringstream row(line);
    std::string ref, type, digest;
    row >> ref >> type >> digest;
    if (digest.rfind("sha256:", 0) == 0) target = digest;
  }
  ASSERT_FALSE(target.empty());
  auto doc = nlohmann::json::parse(d_->Ctr({"content", "get", target}).out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  std::string manifest = target;
  if (doc.contains("manifests")) manifest = doc["manifests"][0]["digest"].get<std::string>();
  auto layers = nlohmann::json::parse(d_->Ctr({"content", "get", manifest}).out, nullptr, false);
  ASSERT_TRUE(layers.contains("layers")) << layers;

  auto committed = [&] {
    std::set<std::string> rows;
    static const std::regex kRow("^(\\S+)\\s+(\\S*)\\s+Committed\\s*$");
    std::smatch m;
    for (const auto& line : Lines(Ctr({"ls"}).out)) {
      if (std::regex_match(line, m, kRow)) rows.insert(m[1].str() + " " + m[2].str());
    }
    return rows;
  };
  // unpack reads its own --snapshotter, not the group's (as ctr).
  auto ours = Berth({"unpack", "--snapshotter", GetParam(), manifest});
  auto after_ours = committed();
  EXPECT_EQ(after_ours.size(), layers["layers"].size()) << ours.out;
  // Remove them (children first), then let ctr make them again.
  for (size_t round = 0; round < after_ours.size() && !committed().empty(); ++round) {
    for (const auto& row : committed()) d_->Ctr(Args({"rm", row.substr(0, row.find(' '))}));
  }
  ASSERT_TRUE(committed().empty());
  auto theirs = Ctr({"unpack", "--snapshotter", GetParam(), manifest});
  EXPECT_EQ(ours.out, theirs.out);
  EXPECT_EQ(committed(), after_ours);
}

// Snapshots.Cleanup (ctr has no command for it): a directory the snapshotter has no record of
// (left by a crash) is removed; the snapshots it has are kept.
TEST_P(CliSnapshotsIT, CleanupRemovesOrphanDirectoriesOnly) {
  Ctr({"prepare", "kept"});
  std::string kept = WritableDir("kept");
  ASSERT_FALSE(kept.empty());
  ASSERT_TRUE(fs::WriteFileAtomic(kept + "/f", "kept\n"));
  std::string orphan =
      d_->Root() + "/io.containerd.snapshotter.v1." + GetParam() + "/snapshots/424242";
  ASSERT_TRUE(fs::MkdirAll(orphan + "/fs", 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(orphan + "/fs/junk", "junk\n"));

  auto channel = grpc::CreateChannel("unix:" + d_->Socket(), grpc::InsecureChannelCredentials());
  auto stub = containerd::services::snapshots::v1::Snapshots::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", "default");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  containerd::services::snapshots::v1::CleanupRequest req;
  req.set_snapshotter(GetParam());
  google::protobuf::Empty empty;
  grpc::Status st = stub->Cleanup(&ctx, req, &empty);
  ASSERT_TRUE(st.ok()) << st.error_message();

  struct stat sb {};
  EXPECT_NE(::stat(orphan.c_str(), &sb), 0) << "the orphan is still there";
  EXPECT_EQ(ReadText(kept + "/f"), "kept\n");
  EXPECT_NE(Ctr({"ls"}).out.find("kept"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Snapshotters, CliSnapshotsIT, ::testing::Values("overlayfs", "native"));

class CliImagesMountIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = Registry::Start().release(); }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(registry_, nullptr) << "registry with test images did not start";
    Daemon::Options options;
    options.extra_config =
        "[plugins.\"io.containerd.gc.v1.scheduler\"]\n  startup_delay = \"1h\"\n";
    d_ = Daemon::Create(std::move(options));
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }
  RunResult Ctr(const std::vector<std::string>& args, const std::string& ns = "") {
    auto r = d_->Ctr(args, ns);
    EXPECT_EQ(r.exit_code, 0) << "ctr " << ::testing::PrintToString(args) << ":\n"
                              << r.err << "\nlog:\n"
                              << d_->Log();
    return r;
  }
  RunResult Berth(const std::vector<std::string>& args) {
    auto r = d_->Berth(args);
    EXPECT_EQ(r.exit_code, 0) << "berth " << ::testing::PrintToString(args) << ":\n"
                              << r.err << "\nlog:\n"
                              << d_->Log();
    return r;
  }
  std::string Target(const std::string& name) {
    std::string t = d_->Dir() + "/" + name;
    ::mkdir(t.c_str(), 0755);
    guard_->Add(t);
    return t;
  }

  static Registry* registry_;
  std::unique_ptr<Daemon> d_;
  // Declared after d_: unmounts before the daemon's directory is removed.
  std::unique_ptr<MountGuard> guard_ = std::make_unique<MountGuard>();
};

Registry* CliImagesMountIT::registry_ = nullptr;

TEST_F(CliImagesMountIT, MountUnpacksFetchedImage) {
  const std::string ref = registry_->Ref("multi");
  // Fetch only: berth's unpacker does the unpacking.
  Ctr({"content", "fetch", "--plain-http", ref});
  EXPECT_TRUE(CommittedRows(Ctr({"snapshots", "ls"}).out).empty());
  std::string target = Target("rootfs");
  auto m = Berth({"images", "mount", ref, target});
  auto lines = Lines(m.out);
  ASSERT_EQ(lines.size(), 2u) << m.out;
  const std::string chain_id = lines[0];
  EXPECT_EQ(lines[1], target);
  EXPECT_TRUE(IsMountPoint(target));
  CheckMultiRootfs(target);
  EXPECT_NE(::mkdir((target + "/new-dir").c_str(), 0755), 0) << "a view is read-only";

  // Unpacked as ctr unpacks: same chain of committed snapshots, labels on the content.
  auto info = Ctr({"snapshots", "info", chain_id});
  EXPECT_NE(info.out.find("\"Kind\": \"Committed\""), std::string::npos) << info.out;
  EXPECT_NE(Ctr({"images", "check"}).out.find("true"), std::string::npos);
  Ctr({"images", "pull", "--plain-http", ref}, "other");
  EXPECT_EQ(CommittedRows(Ctr({"snapshots", "ls"}).out),
            CommittedRows(Ctr({"snapshots", "ls"}, "other").out));
  auto content = Ctr({"content", "ls"}).out;
  EXPECT_NE(content.find("containerd.io/gc.ref.snapshot.overlayfs=" + chain_id), std::string::npos)
      << content;
  size_t uncompressed = 0;
  for (const auto& line : Lines(content)) {
    if (line.find("containerd.io/uncompressed=sha256:") != std::string::npos) ++uncompressed;
  }
  EXPECT_EQ(uncompressed, 5u) << content;
  auto info_target = Ctr({"snapshots", "info", target});
  EXPECT_NE(info_target.out.find("\"Kind\": \"View\""), std::string::npos);
  EXPECT_NE(info_target.out.find("\"Parent\": \"" + chain_id + "\""), std::string::npos);
  EXPECT_NE(Ctr({"leases", "ls"}).out.find(target), std::string::npos);

  // Mounting again on the same target reuses the view (the lease exists already).
  auto again = d_->Berth({"images", "mount", ref, target});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, m.out);

  auto u = Berth({"images", "unmount", "--rm", target});
  EXPECT_EQ(u.out, target + "\n");
  EXPECT_FALSE(IsMountPoint(target));
  EXPECT_NE(d_->Ctr({"snapshots", "info", target}).exit_code, 0);
  EXPECT_EQ(Ctr({"leases", "ls"}).out.find(target), std::string::npos);
}

TEST_F(CliImagesMountIT, MountAfterCtrPullMatchesCtr) {
  const std::string ref = registry_->Ref("multi");
  Ctr({"images", "pull", "--plain-http", ref});
  std::string by_ctr = Target("by-ctr");
  std::string by_berth = Target("by-berth");
  std::string rw = Target("rw");
  auto c = Ctr({"images", "mount", ref, by_ctr});
  auto b = Berth({"images", "mount", ref, by_berth});
  ASSERT_EQ(Lines(c.out).size(), 2u) << c.out;
  EXPECT_EQ(b.out, Lines(c.out)[0] + "\n" + by_berth + "\n");
  CheckMultiRootfs(by_berth);

  auto w = Berth({"images", "mount", "--rw", ref, rw});
  CheckMultiRootfs(rw);
  EXPECT_TRUE(fs::WriteFileAtomic(rw + "/written", "x"));
  auto info = Ctr({"snapshots", "info", rw});
  EXPECT_NE(info.out.find("\"Kind\": \"Active\""), std::string::npos) << info.out;

  // Each tool unmounts the other's mount.
  EXPECT_EQ(Berth({"images", "unmount", "--rm", by_ctr}).out, by_ctr + "\n");
  EXPECT_EQ(Ctr({"images", "unmount", "--rm", by_berth}).out, by_berth + "\n");
  EXPECT_EQ(Berth({"images", "unmount", rw}).out, rw + "\n");
  for (const auto& t : {by_ctr, by_berth, rw}) EXPECT_FALSE(IsMountPoint(t)) << t;
  // Without --rm the snapshot stays.
  Ctr({"snapshots", "info", rw});
  EXPECT_EQ(Berth({"images", "unmount", "--rm", rw}).out, rw + "\n");
  EXPECT_NE(d_->Ctr({"snapshots", "info", rw}).exit_code, 0);

  // Errors as ctr's.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"images", "mount"},
        {"images", "mount", ref},
        {"images", "unmount"},
        {"images", "mount", "missing:latest", Target("missing")},
        {"images", "mount", "--platform", "a/b/c/d", ref, Target("bad")}}) {
    auto ce = d_->Ctr(args);
    auto be = d_->Berth(args);
    EXPECT_EQ(be.exit_code, ce.exit_code) << ::testing::PrintToString(args);
    EXPECT_EQ(Message(be, "berth"), Message(ce, "ctr")) << ::testing::PrintToString(args);
  }
}

}  // namespace
}  // namespace berth::testing
