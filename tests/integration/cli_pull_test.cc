// `berth images pull/push`, `berth content fetch` and `berth run --pull` against a real
// docker-registry on loopback (configured through a hosts.toml, plain http), cross-checked with
// the real ctr: unpacked snapshots, a re-pull that transfers nothing, push and pull back, and the
// progress display on a terminal (under script(1)) and off one.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <regex>
#include <sstream>

#include "common/fs.h"
#include "harness.h"

namespace berth::testing {
namespace {

// Container ids of this process: the containers run in `default` (the tests check messages that
// name it), where every berthd on the host keeps its cgroups (/sys/fs/cgroup/*/default/<id>).
std::string Id(const std::string& base) { return base + "-" + std::to_string(::getpid()); }

class CliPullIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = Registry::Start({.tags = {"busybox"}}).release(); }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr) << "the test registry did not start";
    d_ = Daemon::Create();
    ASSERT_NE(d_, nullptr);
    ASSERT_TRUE(d_->Start()) << d_->Log();
    // <dir>/certs.d/<host:port>/hosts.toml: the registry as a plain-http server.
    hosts_dir_ = d_->Dir() + "/certs.d";
    std::string host_dir = hosts_dir_ + "/" + registry_->Addr();
    ASSERT_EQ(Exec({"mkdir", "-p", host_dir}).exit_code, 0);
    ASSERT_TRUE(fs::WriteFileAtomic(
        host_dir + "/hosts.toml", "server = \"http://" + registry_->Addr() + "\"\n[host.\"http://" +
                                      registry_->Addr() +
                                      "\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n"));
  }

  void TearDown() override {
    // Runs are --rm; a failed one may leave its cgroups (empty, once berthd is gone).
    d_.reset();
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      for (const char* base : {"n1", "t1", "t2", "c1", "auth-run"}) {
        ::rmdir((e.path().string() + "/default/" + Id(base)).c_str());
      }
    }
  }

  RunResult Berth(const std::vector<std::string>& args, const std::string& ns = "") {
    return d_->Berth(args, ns);
  }

  // Blob GETs the registry served for `repo` (its access log).
  static int BlobGets(const std::string& repo) {
    std::istringstream log(ReadText(registry_->Dir() + "/registry.log"));
    std::string line;
    int n = 0;
    const std::string uri = "http.request.uri=\"/v2/" + repo + "/blobs/sha256:";
    while (std::getline(log, line)) {
      if (line.find("response completed") != std::string::npos &&
          line.find("http.request.method=GET") != std::string::npos &&
          line.find(uri) != std::string::npos) {
        ++n;
      }
    }
    return n;
  }

  // The digest column of `ctr images ls` for `ref` ("" if absent).
  static std::string CtrDigest(const Daemon& d, const std::string& ref) {
    auto ls = d.Ctr({"images", "ls"});
    std::istringstream in(ls.out);
    std::string line;
    std::regex row("^(\\S+)\\s+\\S+\\s+(sha256:[0-9a-f]{64})\\s");
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, row) && m[1] == ref) return m[2];
    }
    return "";
  }

  static Registry* registry_;
  std::unique_ptr<Daemon> d_;
  std::string hosts_dir_;
};

Registry* CliPullIT::registry_ = nullptr;

TEST_F(CliPullIT, PullUnpacksAndASecondPullTransfersNothing) {
  const std::string ref = registry_->Ref("busybox");
  const int gets_before = BlobGets("test/busybox");
  auto r = Berth({"--debug", "images", "pull", "--hosts-dir", hosts_dir_, ref});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("unpacking linux/amd64 sha256:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("done: "), std::string::npos) << r.out;
  std::smatch m;
  std::regex timings(
      "pull timings: resolve=[0-9]+\\.[0-9]{3}s fetch=[0-9]+\\.[0-9]{3}s "
      "unpack=[0-9]+\\.[0-9]{3}s total=[0-9]+\\.[0-9]{3}s bytes=([0-9]+)");
  ASSERT_TRUE(std::regex_search(r.err, m, timings)) << r.err;
  EXPECT_GT(std::stoll(m[1]), 0) << r.err;
  const int gets_first = BlobGets("test/busybox");
  EXPECT_GE(gets_first - gets_before, 2) << "config and layer were fetched";

  // The image, its content and the unpacked snapshot as the real ctr sees them.
  EXPECT_NE(d_->Ctr({"images", "ls", "-q"}).out.find(ref), std::string::npos);
  auto check = d_->Ctr({"images", "check"});
  EXPECT_NE(check.out.find("complete"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("true"), std::string::npos) << "unpacked: " << check.out;
  auto content = d_->Ctr({"content", "ls"});
  EXPECT_NE(content.out.find("containerd.io/distribution.source.127.0.0.1=test/busybox"),
            std::string::npos)
      << content.out;
  EXPECT_NE(content.out.find("containerd.io/gc.ref.content.config="), std::string::npos);
  EXPECT_NE(content.out.find("containerd.io/gc.ref.content.l.0="), std::string::npos);
  EXPECT_NE(content.out.find("containerd.io/gc.ref.snapshot.overlayfs="), std::string::npos);
  EXPECT_NE(d_->Ctr({"snapshots", "ls"}).out.find("Committed"), std::string::npos);
  EXPECT_EQ(d_->Ctr({"leases", "ls", "-q"}).out, "") << "the pull's lease is gone";

  auto again = Berth({"--debug", "images", "pull", "--hosts-dir", hosts_dir_, ref});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  ASSERT_TRUE(std::regex_search(again.err, m, timings)) << again.err;
  EXPECT_EQ(m[1], "0") << again.err;
  EXPECT_EQ(BlobGets("test/busybox"), gets_first) << "no blob GET on a re-pull";
  // Nothing applied, yet the unpack step took its time: ctr's "done:" is never 0.
  EXPECT_NE(again.out.find("\ndone: "), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("done: 0s"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("done: 0ns"), std::string::npos) << again.out;
}

// An interrupted download resumes: an ingest holding the first 1000 bytes of the layer (left
// by an aborted `ctr content ingest`) makes the pull fetch 1000 bytes less than a fresh one.
TEST_F(CliPullIT, APartialIngestIsResumed) {
  const std::string ref = registry_->Ref("busybox");
  std::regex bytes_re("pull timings: .* bytes=([0-9]+)");
  std::smatch m;
  auto full = Berth({"--debug", "images", "pull", "--hosts-dir", hosts_dir_, ref});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  ASSERT_TRUE(std::regex_search(full.err, m, bytes_re)) << full.err;
  const long long full_bytes = std::stoll(m[1]);
  // The layer: the largest blob of the image (whatever size the host's busybox makes it).
  std::string layer, blob;
  std::istringstream digests(d_->Ctr({"content", "ls", "-q"}).out);
  for (std::string d; std::getline(digests, d);) {
    if (d.empty()) continue;
    std::string data = d_->Ctr({"content", "get", d}).out;
    if (data.size() > blob.size()) {
      layer = d;
      blob = std::move(data);
    }
  }
  ASSERT_GT(blob.size(), 1000u) << layer;

  auto fresh = Daemon::Create();
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(fresh->Start()) << fresh->Log();
  auto partial = Exec({"ctr", "-a", fresh->Socket(), "content", "ingest", "--expected-size",
                       std::to_string(blob.size()), "--expected-digest", layer, "layer-" + layer},
                      blob.substr(0, 1000));
  EXPECT_NE(partial.exit_code, 0) << "a short ingest cannot commit";
  ASSERT_NE(fresh->Ctr({"content", "active"}).out.find("layer-" + layer), std::string::npos);

  auto resumed = fresh->Berth({"--debug", "images", "pull", "--hosts-dir", hosts_dir_, ref});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ASSERT_TRUE(std::regex_search(resumed.err, m, bytes_re)) << resumed.err;
  EXPECT_EQ(std::stoll(m[1]), full_bytes - 1000) << resumed.err;
  EXPECT_EQ(fresh->Ctr({"content", "get", layer}).out, blob);
  EXPECT_EQ(fresh->Ctr({"content", "active"}).out.find("layer-"), std::string::npos);
}

TEST_F(CliPullIT, ShortReferencesAreNormalizedAndBadOnesRefused) {
  // No tag: ":latest", as docker normalizes (ctr would refuse the short form).
  const std::string untagged = registry_->Addr() + "/test/busybox";
  auto ok = Berth({"images", "pull", "--hosts-dir", hosts_dir_, untagged});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(d_->Ctr({"images", "ls", "-q"}).out, untagged + ":latest\n");
  auto run = Berth({"run", "--rm", untagged, Id("n1"), "echo", "short"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "short\n");

  auto bad = Berth({"images", "pull", "--hosts-dir", hosts_dir_, "Bad/UPPER"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("Bad/UPPER"), std::string::npos) << bad.err;
  auto missing = Berth(
      {"images", "pull", "--hosts-dir", hosts_dir_, registry_->Addr() + "/test/nothing:latest"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("test/nothing"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("not found"), std::string::npos) << missing.err;
}

TEST_F(CliPullIT, RunAfterPullAndRunWithPullOnAFreshDaemon) {
  const std::string ref = registry_->Ref("busybox");
  auto missing = Berth({"run", "--rm", ref, Id("t1"), "echo", "hi"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("image " + ref + " not found in namespace default"), std::string::npos)
      << missing.err;
  EXPECT_NE(missing.err.find("berth run --pull"), std::string::npos) << missing.err;

  auto pulled =
      Berth({"run", "--rm", "--pull", "--hosts-dir", hosts_dir_, ref, Id("t1"), "echo", "hi"});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.out << pulled.err;
  EXPECT_NE(pulled.out.find("hi\n"), std::string::npos) << pulled.out;
  EXPECT_NE(pulled.out.find("unpacking linux/amd64"), std::string::npos) << pulled.out;

  // Now present: a plain run, no pull.
  auto run = Berth({"run", "--rm", ref, Id("t2"), "echo", "hi"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "hi\n");
  auto bad = Berth({"run", "--rm", "--platform", "nosuchthing", ref, Id("t3"), "true"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nosuchthing"), std::string::npos) << bad.err;
  // A single manifest at the root is used whatever --platform says, as containerd's
  // images.Manifest skips the platform check for the root descriptor: ctr and berth agree.
  auto other = Berth({"run", "--rm", "--platform", "linux/arm64", ref, Id("t3"), "echo", "x"});
  auto ctr_other =
      d_->Ctr({"run", "--rm", "--platform", "linux/arm64", ref, Id("c3"), "echo", "x"});
  EXPECT_EQ(other.exit_code, ctr_other.exit_code) << other.err << ctr_other.err;
  EXPECT_EQ(other.out, ctr_other.out);
  // ctr runs the image berth pulled.
  auto ctr = d_->Ctr({"run", "--rm", ref, Id("c1"), "echo", "from-ctr"});
  EXPECT_EQ(ctr.exit_code, 0) << ctr.err;
  EXPECT_EQ(ctr.out, "from-ctr\n");
}

TEST_F(CliPullIT, PushToANewRepositoryThenPullBackOnAFreshDaemon) {
  const std::string ref = registry_->Ref("busybox");
  ASSERT_EQ(Berth({"images", "pull", "--hosts-dir", hosts_dir_, ref}).exit_code, 0);
  const std::string digest = CtrDigest(*d_, ref);
  ASSERT_FALSE(digest.empty());
  const std::string remote = registry_->Addr() + "/t1push/bb:v1";
  auto push = Berth({"images", "push", "--hosts-dir", hosts_dir_, remote, ref});
  ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
  EXPECT_NE(push.out.find("manifest-" + digest), std::string::npos) << push.out;
  // Pushing again finds every blob there.
  auto again = Berth({"images", "push", "--hosts-dir", hosts_dir_, remote, ref});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("exists"), std::string::npos) << again.out;

  auto fresh = Daemon::Create();
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(fresh->Start()) << fresh->Log();
  auto pull = fresh->Berth({"images", "pull", "--hosts-dir", hosts_dir_, remote});
  ASSERT_EQ(pull.exit_code, 0) << pull.out << pull.err;
  EXPECT_EQ(CtrDigest(*fresh, remote), digest);
  // And the real ctr pulls the pushed image too.
  auto ctr = fresh->Ctr({"images", "pull", "--plain-http", remote});
  EXPECT_EQ(ctr.exit_code, 0) << ctr.err;
}

// An OCI index (made here: busybox as linux/amd64, the "multi" image as linux/arm64): the
// host's manifest is the one fetched and unpacked, --platform picks another, --all-platforms
// fetches both; the index is labelled with its manifests as containerd does.
TEST_F(CliPullIT, IndexPullPicksThePlatform) {
  const std::string amd = registry_->Ref("busybox");
  const std::string repo = registry_->Addr() + "/t1idx/img";
  ASSERT_EQ(Berth({"images", "pull", "--hosts-dir", hosts_dir_, amd}).exit_code, 0);
  auto multi = Registry::Start({.tags = {"multi"}});
  ASSERT_NE(multi, nullptr);
  ASSERT_EQ(Berth({"images", "pull", "--plain-http", multi->Ref("multi")}).exit_code, 0);
  ASSERT_EQ(Berth({"images", "push", "--hosts-dir", hosts_dir_, repo + ":amd", amd}).exit_code, 0);
  auto pushed =
      Berth({"images", "push", "--hosts-dir", hosts_dir_, repo + ":arm", multi->Ref("multi")});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  const std::string amd_digest = CtrDigest(*d_, amd);
  const std::string arm_digest = CtrDigest(*d_, multi->Ref("multi"));
  auto size = [&](const std::string& digest) {
    return std::to_string(d_->Ctr({"content", "get", digest}).out.size());
  };
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":")" +
                      arm_digest + R"(","size":)" + size(arm_digest) +
                      R"(,"platform":{"os":"linux","architecture":"arm64"}},)"
                      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                      amd_digest + R"(","size":)" + size(amd_digest) +
                      R"(,"platform":{"os":"linux","architecture":"amd64"}}]})";
  auto put = Exec({"curl", "-sf", "-X", "PUT", "-H",
                   "Content-Type: application/vnd.oci.image.index.v1+json", "--data-binary", index,
                   "http://" + repo.substr(0, repo.find('/')) + "/v2/t1idx/img/manifests/latest"});
  ASSERT_EQ(put.exit_code, 0) << put.out << put.err;

  auto fresh = Daemon::Create();
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(fresh->Start()) << fresh->Log();
  auto r = fresh->Berth({"images", "pull", "--hosts-dir", hosts_dir_, repo + ":latest"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("manifest-" + amd_digest), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("manifest-" + arm_digest), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unpacking linux/amd64"), std::string::npos) << r.out;
  auto labels = fresh->Ctr({"content", "ls"}).out;
  EXPECT_NE(labels.find("containerd.io/gc.ref.content.m.0=" + arm_digest), std::string::npos)
      << labels;
  EXPECT_NE(labels.find("containerd.io/gc.ref.content.m.1=" + amd_digest), std::string::npos)
      << labels;
  EXPECT_NE(fresh->Ctr({"images", "check"}).out.find("complete"), std::string::npos);

  auto arm = fresh->Berth({"content", "fetch", "--hosts-dir", hosts_dir_, "--platform",
                           "linux/arm64", repo + ":latest"});
  ASSERT_EQ(arm.exit_code, 0) << arm.err;
  EXPECT_NE(arm.out.find("manifest-" + arm_digest), std::string::npos) << arm.out;
  EXPECT_EQ(arm.out.find("manifest-" + amd_digest), std::string::npos) << arm.out;

  // run reads --platform with the same parser as pull: a lone word is an os ("linux") or an
  // architecture ("amd64"), and either picks the amd64 manifest of the index.
  for (const std::string platform : {"linux", "amd64", "linux/amd64"}) {
    auto one = fresh->Berth(
        {"run", "--rm", "--platform", platform, repo + ":latest", Id("p1"), "echo", platform});
    EXPECT_EQ(one.exit_code, 0) << platform << ": " << one.err;
    EXPECT_EQ(one.out, platform + "\n");
  }

  auto all = fresh->Berth(
      {"content", "fetch", "--hosts-dir", hosts_dir_, "--all-platforms", repo + ":latest"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("manifest-" + arm_digest), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("manifest-" + amd_digest), std::string::npos) << all.out;
}

TEST_F(CliPullIT, ContentFetchStoresWithoutUnpacking) {
  const std::string ref = registry_->Ref("busybox");
  auto r = Berth({"content", "fetch", "--hosts-dir", hosts_dir_, ref});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("unpacking"), std::string::npos) << r.out;
  auto check = d_->Ctr({"images", "check"});
  EXPECT_NE(check.out.find("complete"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("false"), std::string::npos) << "not unpacked: " << check.out;

  // fetch-blob: one blob from the registry, verified, to a file; the same bytes as stored.
  const std::string digest = CtrDigest(*d_, ref);
  ASSERT_FALSE(digest.empty());
  std::string file = d_->Dir() + "/manifest.json";
  auto blob = Berth({"content", "fetch-blob", "--hosts-dir", hosts_dir_, "-o", file, ref, digest});
  ASSERT_EQ(blob.exit_code, 0) << blob.err;
  EXPECT_EQ(ReadText(file), d_->Ctr({"content", "get", digest}).out);
  auto none = Berth(
      {"content", "fetch-blob", "--hosts-dir", hosts_dir_, ref, "sha256:" + std::string(64, '0')});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("not found"), std::string::npos) << none.err;
}

// A registry serving a corrupted layer: the pull fails naming the blob and the host, and
// neither the bad blob nor an image record is left behind.
TEST_F(CliPullIT, DigestMismatchAbortsAndCommitsNothing) {
  auto bad = Registry::Start({.tags = {"busybox"}});
  ASSERT_NE(bad, nullptr);
  // The largest blob of the repository is the layer: flip its first byte, size unchanged.
  auto find = Exec({"sh", "-c",
                    "ls -S $(find " + bad->Dir() +
                        "/storage -path '*/blobs/sha256/*/data' -type f) | head -n1"});
  ASSERT_EQ(find.exit_code, 0) << find.err;
  std::string data_path = find.out.substr(0, find.out.find('\n'));
  ASSERT_FALSE(data_path.empty());
  std::string hex = data_path.substr(0, data_path.rfind('/'));
  hex = hex.substr(hex.rfind('/') + 1);
  ASSERT_EQ(Exec({"sh", "-c",
                  "printf '\\377' | dd of=" + data_path + " bs=1 count=1 conv=notrunc 2>/dev/null"})
                .exit_code,
            0);
  const std::string ref = bad->Ref("busybox");
  auto r = Berth({"images", "pull", "--plain-http", ref});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("sha256:" + hex), std::string::npos) << "names the blob: " << r.err;
  EXPECT_NE(r.err.find(bad->Addr()), std::string::npos) << "names the host: " << r.err;
  EXPECT_NE(r.err.find("digest"), std::string::npos) << r.err;
  EXPECT_EQ(d_->Ctr({"content", "ls", "-q"}).out.find(hex), std::string::npos);
  EXPECT_EQ(d_->Ctr({"content", "active"}).out.find(hex), std::string::npos)
      << "the bad ingest is dropped";
  EXPECT_EQ(d_->Ctr({"images", "ls", "-q"}).out, "");
}

TEST_F(CliPullIT, PlainOutputWhenNotATerminal) {
  auto r = Berth({"images", "pull", "--hosts-dir", hosts_dir_, registry_->Ref("busybox")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "no ANSI escapes: " << r.out;
  EXPECT_NE(r.out.find(registry_->Ref("busybox") + ":"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resolved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer-sha256:"), std::string::npos) << r.out;
  // One final table only.
  size_t first = r.out.find("elapsed:");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("elapsed:", first + 1), std::string::npos) << r.out;
}

TEST_F(CliPullIT, LiveProgressOnATerminal) {
  // script(1) (bsdutils, essential on Debian) gives the pull a pseudo-terminal.
  ASSERT_EQ(::access("/usr/bin/script", X_OK), 0) << "script(1) is missing: run make deps";
  // An 80-column terminal: ctr's rows are wider (ref, a 40-column bar, sizes, speed).
  std::string pull = BinPath("berth") + " -a " + d_->Socket() + " images pull --hosts-dir " +
                     hosts_dir_ + " " + registry_->Ref("busybox");
  auto r = Exec({"script", "-qfec", "stty cols 80 rows 24 && " + pull, "/dev/null"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Every line of a frame fits: one that wraps makes the cursor-up count wrong and leaves
  // fragments. (The "unpacking ..." line after the display is printed once and may wrap.)
  std::string shown;
  bool in_frame = false;
  for (size_t i = 0; i < r.out.size(); ++i) {
    const char c = r.out[i];
    if (c == '\x1b') {  // ESC [ ... letter
      in_frame = in_frame || r.out.compare(i, 4, "\x1b[2K") == 0;
      while (i < r.out.size() && !std::isalpha(static_cast<unsigned char>(r.out[i]))) ++i;
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (in_frame) {
        EXPECT_LE(shown.size(), 79u) << "a line wider than the terminal: " << shown;
      }
      shown.clear();
      in_frame = false;
      continue;
    }
    shown += c;
  }
  // Redrawn in place: erase-line escapes, cursor-up between frames, at least the first frame
  // (resolving) and the final one.
  EXPECT_NE(r.out.find("\x1b[2K"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resolving"), std::string::npos) << r.out;
  std::regex up("\x1b\\[[0-9]+A");
  EXPECT_TRUE(std::regex_search(r.out, up)) << r.out;
  size_t first = r.out.find("elapsed:");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("elapsed:", first + 1), std::string::npos) << "two frames or more";
  EXPECT_NE(r.out.find("unpacked"), std::string::npos) << "final state stays: " << r.out;

  // A terminal that does not say its width (0 columns): plain lines, the final table once.
  ASSERT_EQ(d_->Ctr({"images", "rm", "--sync", registry_->Ref("busybox")}).exit_code, 0);
  auto plain = Exec({"script", "-qfec", "stty cols 0 rows 0 && " + pull, "/dev/null"});
  ASSERT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_EQ(plain.out.find('\x1b'), std::string::npos) << "no ANSI escapes: " << plain.out;
  first = plain.out.find("elapsed:");
  ASSERT_NE(first, std::string::npos) << plain.out;
  EXPECT_EQ(plain.out.find("elapsed:", first + 1), std::string::npos) << plain.out;
}

// The registry flags through the CLI: a TLS registry with htpasswd auth, its CA given by a
// hosts.toml, credentials by -u (pull and push); then a bearer-token registry (regproxy.py
// issuing tokens only for basic credentials) by -u.
TEST(CliRegistryAuthIT, TlsWithBasicAuthAndBearerTokensThroughHostsTomlAndUser) {
  auto tmp = fs::TempDir::Create("berth-cli-auth-");
  ASSERT_TRUE(tmp);
  const std::string script = std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/registry.sh";
  const std::string certs = tmp->Path() + "/certs";
  ASSERT_EQ(Exec({script, "gencert", certs}).exit_code, 0);
  const std::string htpasswd = tmp->Path() + "/htpasswd";
  ASSERT_EQ(Exec({script, "htpasswd", htpasswd, "alice", "s3cret"}).exit_code, 0);
  auto tls = Registry::Start({.htpasswd = htpasswd,
                              .tls_cert = certs + "/cert.pem",
                              .tls_key = certs + "/key.pem",
                              .creds = "alice:s3cret",
                              .tags = {"busybox"}});
  ASSERT_NE(tls, nullptr) << "the TLS registry did not start";
  auto d = Daemon::Create();
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->Start()) << d->Log();

  // hosts.toml: https with our CA (a path relative to the host's directory).
  const std::string hosts = tmp->Path() + "/certs.d";
  const std::string host_dir = hosts + "/" + tls->Addr();
  ASSERT_EQ(Exec({"mkdir", "-p", host_dir}).exit_code, 0);
  ASSERT_EQ(Exec({"cp", certs + "/ca.pem", host_dir + "/ca.pem"}).exit_code, 0);
  ASSERT_TRUE(fs::WriteFileAtomic(host_dir + "/hosts.toml",
                                  "server = \"https://" + tls->Addr() + "\"\nca = \"ca.pem\"\n"));
  const std::string ref = tls->Ref("busybox");

  auto anonymous = d->Berth({"images", "pull", "--hosts-dir", hosts, ref});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_NE(anonymous.err.find("401"), std::string::npos) << anonymous.err;
  auto wrong = d->Berth({"images", "pull", "--hosts-dir", hosts, "-u", "alice:nope", ref});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;

  auto pulled = d->Berth({"images", "pull", "--hosts-dir", hosts, "-u", "alice:s3cret", ref});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.out << pulled.err;
  EXPECT_NE(d->Ctr({"images", "ls", "-q"}).out.find(ref), std::string::npos);
  const std::string copy = tls->Addr() + "/test/copy:latest";
  auto pushed = d->Berth({"images", "push", "--hosts-dir", hosts, "-u", "alice:s3cret", copy, ref});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out << pushed.err;
  auto back = d->Berth({"images", "pull", "--hosts-dir", hosts, "-u", "alice:s3cret", copy});
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
  auto run = d->Berth({"run", "--rm", copy, Id("auth-run"), "echo", "over-tls"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "over-tls\n");

  // Bearer tokens: the proxy answers 401 with a Bearer challenge; its /token wants tok:pw.
  auto plain = Registry::Start({.tags = {"busybox"}});
  ASSERT_NE(plain, nullptr);
  auto proxy =
      RegistryProxy::Start("http://" + plain->Addr(), {"--user", "tok", "--password", "pw"});
  ASSERT_NE(proxy, nullptr) << "regproxy.py did not start";
  const std::string via = proxy->Addr() + "/test/busybox:latest";
  auto no_token = d->Berth({"images", "pull", via});
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_NE(no_token.err.find("401"), std::string::npos) << no_token.err;
  auto token = d->Berth({"images", "pull", "-u", "tok:pw", via});
  ASSERT_EQ(token.exit_code, 0) << token.out << token.err;
  EXPECT_NE(d->Ctr({"images", "ls", "-q"}).out.find(via), std::string::npos);
}

}  // namespace
}  // namespace berth::testing
