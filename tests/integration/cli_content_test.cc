// `berth content|images|leases` against the real ctr on the same berthd: same output, same
// errors. Blobs are written with `ctr content ingest`; images are created by `ctr images import
// --no-unpack` of small OCI archives built here.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "common/digest.h"
#include "harness.h"

namespace berth::testing {
namespace {

std::string DigestOf(std::string_view data) { return Digest::FromBytes(data).String(); }

// stderr without the program prefix, so ctr's and berth's messages compare.
std::string Message(const RunResult& r, std::string_view prog) {
  std::string prefix = std::string(prog) + ": ";
  auto pos = r.err.rfind(prefix);
  if (pos == std::string::npos) return r.err;
  return r.err.substr(pos + prefix.size());
}

class CliContentIT : public ::testing::Test {
 protected:
  void SetUp() override {
    // Unreferenced blobs go at the next collection, as in containerd: no start-up collection
    // here, and blobs that must outlive a deletion are labelled containerd.io/gc.root.
    Daemon::Options options;
    options.extra_config =
        "[plugins.\"io.containerd.gc.v1.scheduler\"]\n  startup_delay = \"1h\"\n";
    d_ = Daemon::Create(std::move(options));
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }

  RunResult CtrIngest(const std::string& ref, const std::string& data,
                      const std::vector<std::string>& flags = {}) {
    std::vector<std::string> argv = {"ctr", "-a", d_->Socket(), "content", "ingest"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(ref);
    return Exec(argv, data);
  }
  RunResult BerthIngest(const std::string& ref, const std::string& data,
                        const std::vector<std::string>& flags = {}) {
    std::vector<std::string> argv = {BinPath("berth"), "-a", d_->Socket(), "content", "ingest"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(ref);
    return Exec(argv, data);
  }

  // Outputs with an AGE column change as time passes: accept berth's output when ctr printed
  // the same before and after it.
  void ExpectSameAsCtr(const std::vector<std::string>& args) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto before = d_->Ctr(args);
      auto berth = d_->Berth(args);
      auto after = d_->Ctr(args);
      ASSERT_EQ(before.exit_code, 0) << before.err;
      ASSERT_EQ(berth.exit_code, 0) << berth.err;
      if (before.out != after.out) continue;
      EXPECT_EQ(berth.out, before.out);
      return;
    }
    FAIL() << "ctr output never stable for " << ::testing::PrintToString(args);
  }

  // Writes an OCI layout tar under the daemon's dir and imports it with ctr.
  void Import(const std::string& name, const std::map<std::string, std::string>& blobs,
              const std::string& index) {
    std::string dir = d_->Dir() + "/oci-" + std::to_string(imports_++);
    ASSERT_TRUE(fs::MkdirAll(dir + "/blobs/sha256", 0755));
    ASSERT_TRUE(fs::WriteFileAtomic(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    ASSERT_TRUE(fs::WriteFileAtomic(dir + "/index.json", index));
    for (const auto& [digest, data] : blobs) {
      ASSERT_TRUE(fs::WriteFileAtomic(dir + "/blobs/sha256/" + digest.substr(7), data));
    }
    auto tar = Exec({"tar", "-cf", dir + ".tar", "-C", dir, "oci-layout", "index.json", "blobs"});
    ASSERT_EQ(tar.exit_code, 0) << tar.err;
    auto r = d_->Ctr({"images", "import", "--no-unpack", "--all-platforms", dir + ".tar"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_NE(d_->Ctr({"images", "ls", "-q"}).out.find(name), std::string::npos);
  }

  std::unique_ptr<Daemon> d_;
  int imports_ = 0;
};

std::string Desc(std::string_view media_type, const std::string& data,
                 std::string_view extra = "") {
  return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{}{}}})", media_type,
                     DigestOf(data), data.size(), extra);
}

struct Image {
  std::string layer, config, manifest;
  std::map<std::string, std::string> Blobs() const {
    return {{DigestOf(layer), layer}, {DigestOf(config), config}, {DigestOf(manifest), manifest}};
  }
};

Image MakeImage(std::string_view arch, std::string layer) {
  Image img;
  img.layer = std::move(layer);
  img.config = fmt::format(
      R"({{"architecture":"{}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}})",
      arch, DigestOf(img.layer));
  img.manifest =
      fmt::format(R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                  R"("config":{},"layers":[{}]}})",
                  Desc("application/vnd.oci.image.config.v1+json", img.config),
                  Desc("application/vnd.oci.image.layer.v1.tar", img.layer));
  return img;
}

std::string IndexJson(std::string_view media_type, const std::string& data,
                      const std::string& name) {
  return fmt::format(
      R"({{"schemaVersion":2,"manifests":[{}]}})",
      Desc(media_type, data,
           fmt::format(R"(,"annotations":{{"io.containerd.image.name":"{}"}})", name)));
}

TEST_F(CliContentIT, IngestListGetLabelRemove) {
  ASSERT_EQ(CtrIngest("ref-a", "hello\n").exit_code, 0);
  auto b = BerthIngest("ref-b", "world\n",
                       {"--expected-size", "6", "--expected-digest", DigestOf("world\n")});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  // Ingesting present content is a no-op success for both.
  EXPECT_EQ(BerthIngest("ref-c", "hello\n", {"--expected-digest", DigestOf("hello\n")}).exit_code,
            0);

  std::string hello = DigestOf("hello\n");
  std::string world = DigestOf("world\n");
  auto root = d_->Ctr({"content", "label", hello, "containerd.io/gc.root=1"});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  EXPECT_EQ(root.out, "containerd.io/gc.root=1\n");
  auto q = d_->Berth({"content", "ls", "-q"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.out, d_->Ctr({"content", "ls", "-q"}).out);
  EXPECT_NE(q.out.find(hello), std::string::npos);
  EXPECT_NE(q.out.find(world), std::string::npos);
  ExpectSameAsCtr({"content", "ls"});

  auto get = d_->Berth({"content", "get", world});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "world\n");
  EXPECT_EQ(get.out, d_->Ctr({"content", "get", world}).out);

  auto label = d_->Berth({"content", "label", hello, "a=b", "flag"});
  ASSERT_EQ(label.exit_code, 0) << label.err;
  EXPECT_EQ(label.out, "a=b,containerd.io/gc.root=1,flag=true\n");
  auto unflag = d_->Ctr({"content", "label", hello, "flag="});
  EXPECT_EQ(unflag.out.size(), std::string("a=b,containerd.io/gc.root=1\n").size()) << unflag.out;
  EXPECT_EQ(d_->Berth({"content", "label", hello}).out, "a=b,containerd.io/gc.root=1\n");
  EXPECT_EQ(d_->Berth({"content", "ls", "-q", "labels.a==b"}).out, hello + "\n");
  // ctr prints labels in Go's random map order: compare tables with one label per blob.
  EXPECT_EQ(d_->Berth({"content", "label", hello, "a="}).out, "containerd.io/gc.root=1\n");
  ExpectSameAsCtr({"content", "ls"});

  // rm: deleted digests are printed, unknown ones skipped silently.
  std::string ghost = DigestOf("ghost");
  auto rm = d_->Berth({"content", "rm", world, ghost});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, world + "\n");
  EXPECT_EQ(d_->Ctr({"content", "ls", "-q"}).out, hello + "\n");
  auto bad = d_->Berth({"content", "rm", "nodigest", hello});
  auto bad_ctr = d_->Ctr({"content", "rm", "nodigest"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.out, hello + "\n");
  EXPECT_EQ(Message(bad, "berth"), Message(bad_ctr, "ctr"));
  EXPECT_EQ(Message(bad, "berth"), "invalid checksum digest format\n");
}

TEST_F(CliContentIT, ErrorsMatchCtr) {
  std::string missing = DigestOf("missing");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"content", "get", missing},
           {"content", "get", "sha256:abc"},
           {"content", "get"},
           {"content", "label", missing, "a=b"},
           {"content", "label", "bad"},
       }) {
    auto c = d_->Ctr(args);
    auto b = d_->Berth(args);
    EXPECT_EQ(c.exit_code, 1) << ::testing::PrintToString(args);
    EXPECT_EQ(b.exit_code, 1) << ::testing::PrintToString(args);
    EXPECT_EQ(Message(b, "berth"), Message(c, "ctr")) << ::testing::PrintToString(args);
  }

  // Short input: not committed, left as an active ingest.
  auto c = CtrIngest("short-ctr", "abc", {"--expected-size", "5"});
  auto b = BerthIngest("short-berth", "abc", {"--expected-size", "5"});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_EQ(Message(b, "berth"), Message(c, "ctr"));
  EXPECT_EQ(Message(b, "berth"), "failed to read expected number of bytes: unexpected EOF\n");
  // Resuming from a pipe cannot seek.
  c = CtrIngest("short-ctr", "abcde", {"--expected-size", "5"});
  b = BerthIngest("short-berth", "abcde", {"--expected-size", "5"});
  EXPECT_EQ(Message(b, "berth").substr(0, 30), Message(c, "ctr").substr(0, 30));
  EXPECT_EQ(Message(b, "berth").find("short-berth"), Message(c, "ctr").find("short-ctr"));
  EXPECT_EQ(b.exit_code, 1);

  // Digest mismatch at commit.
  c = CtrIngest("wrong-ctr", "data", {"--expected-digest", DigestOf("other")});
  b = BerthIngest("wrong-berth", "data", {"--expected-digest", DigestOf("other")});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(b.exit_code, 1);
  auto strip_ref = [](std::string s, const std::string& ref) {
    auto p = s.find(ref);
    if (p != std::string::npos) s.erase(p, ref.size());
    return s;
  };
  EXPECT_EQ(strip_ref(Message(b, "berth"), "wrong-berth"),
            strip_ref(Message(c, "ctr"), "wrong-ctr"));

  auto noref = d_->Berth({"content", "ingest"});
  EXPECT_EQ(noref.exit_code, 1);
  EXPECT_EQ(Message(noref, "berth"), Message(d_->Ctr({"content", "ingest"}), "ctr"));
}

TEST_F(CliContentIT, ActiveMatchesCtr) {
  ASSERT_EQ(CtrIngest("partial-1", "abc", {"--expected-size", "10"}).exit_code, 1);
  ASSERT_EQ(BerthIngest("partial-2", std::string(2000, 'x'), {"--expected-size", "4000"}).exit_code,
            1);
  ExpectSameAsCtr({"content", "active"});
  auto out = d_->Berth({"content", "active"}).out;
  EXPECT_NE(out.find("partial-1\t3B\t"), std::string::npos) << out;
  EXPECT_NE(out.find("partial-2\t2kB\t"), std::string::npos) << out;
  ExpectSameAsCtr({"content", "active", "ref==partial-2"});
}

TEST_F(CliContentIT, ImagesListCheckTagLabelRemove) {
  Image one = MakeImage("amd64", "single-layer");
  Import("docker.io/library/one:1", one.Blobs(),
         IndexJson("application/vnd.oci.image.manifest.v1+json", one.manifest,
                   "docker.io/library/one:1"));

  Image amd = MakeImage("amd64", "amd64-layer");
  Image arm = MakeImage("arm64", "arm64-layer-is-longer");
  std::string index =
      fmt::format(R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                  R"("manifests":[{},{}]}})",
                  Desc("application/vnd.oci.image.manifest.v1+json", arm.manifest,
                       R"(,"platform":{"architecture":"arm64","os":"linux","variant":"v8"})"),
                  Desc("application/vnd.oci.image.manifest.v1+json", amd.manifest,
                       R"(,"platform":{"architecture":"amd64","os":"linux"})"));
  auto blobs = amd.Blobs();
  blobs.merge(arm.Blobs());
  blobs[DigestOf(index)] = index;
  Import("docker.io/library/multi:1", blobs,
         IndexJson("application/vnd.oci.image.index.v1+json", index, "docker.io/library/multi:1"));

  auto ls = d_->Berth({"images", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, d_->Ctr({"images", "ls"}).out);
  EXPECT_NE(ls.out.find("linux/amd64,linux/arm64/v8"), std::string::npos) << ls.out;
  EXPECT_EQ(d_->Berth({"i", "ls", "-q"}).out, d_->Ctr({"i", "ls", "-q"}).out);
  EXPECT_EQ(d_->Berth({"image", "list", "name~=multi"}).out,
            d_->Ctr({"image", "list", "name~=multi"}).out);

  // tag (+ --force), label, then the same listing.
  auto tag = d_->Berth({"images", "tag", "docker.io/library/one:1", "a:1", "b:1"});
  ASSERT_EQ(tag.exit_code, 0) << tag.err;
  EXPECT_EQ(tag.out, "a:1\nb:1\n");
  auto dup = d_->Berth({"images", "tag", "docker.io/library/multi:1", "a:1"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_EQ(Message(dup, "berth"),
            Message(d_->Ctr({"images", "tag", "docker.io/library/multi:1", "a:1"}), "ctr"));
  EXPECT_EQ(d_->Berth({"images", "tag", "--force", "docker.io/library/multi:1", "a:1"}).out,
            "a:1\n");
  EXPECT_EQ(d_->Ctr({"leases", "ls", "-q"}).out, "");  // the tag lease is gone
  EXPECT_EQ(d_->Berth({"images", "label", "a:1", "x=1", "y"}).out, "x=1,y=true\n");
  EXPECT_EQ(d_->Berth({"images", "label", "a:1", "y="}).out, "x=1\n");
  EXPECT_EQ(d_->Berth({"images", "label", "-r", "b:1", "z=2"}).out, "z=2\n");
  ls = d_->Berth({"images", "ls"});
  EXPECT_EQ(ls.out, d_->Ctr({"images", "ls"}).out);
  EXPECT_NE(ls.out.find("x=1"), std::string::npos) << ls.out;

  // check: no snapshots yet, so compare stdout and the exit code with ctr's.
  auto check = d_->Berth({"images", "check"});
  auto check_ctr = d_->Ctr({"images", "check"});
  EXPECT_EQ(check.out, check_ctr.out);
  EXPECT_EQ(check.exit_code, check_ctr.exit_code);
  EXPECT_EQ(Message(check, "berth"), Message(check_ctr, "ctr"));
  EXPECT_NE(check.out.find("complete (2/2)"), std::string::npos) << check.out;

  // A missing layer makes the image incomplete; a missing manifest unavailable.
  ASSERT_EQ(d_->Ctr({"content", "rm", DigestOf(amd.layer)}).exit_code, 0);
  check = d_->Berth({"images", "check"});
  EXPECT_EQ(check.out, d_->Ctr({"images", "check"}).out);
  EXPECT_NE(check.out.find("incomplete (1/2)"), std::string::npos) << check.out;
  EXPECT_EQ(d_->Berth({"images", "check", "-q"}).out, d_->Ctr({"images", "check", "-q"}).out);
  ASSERT_EQ(d_->Ctr({"content", "rm", DigestOf(amd.manifest)}).exit_code, 0);
  check = d_->Berth({"images", "check"});
  EXPECT_EQ(check.out, d_->Ctr({"images", "check"}).out);
  EXPECT_NE(check.out.find("unavailable (0/?)"), std::string::npos) << check.out;
  ls = d_->Berth({"images", "ls"});
  EXPECT_EQ(ls.out, d_->Ctr({"images", "ls"}).out);
  EXPECT_NE(ls.err.find("failed calculating size for image a:1"), std::string::npos) << ls.err;

  // rm: unknown refs only warn.
  auto rm = d_->Berth({"images", "rm", "a:1", "ghost:1", "b:1", "--sync"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, "a:1\nb:1\n");
  EXPECT_NE(rm.err.find("ghost:1: image not found"), std::string::npos) << rm.err;
  EXPECT_EQ(d_->Berth({"i", "ls", "-q"}).out,
            "docker.io/library/multi:1\ndocker.io/library/one:1\n");

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"images", "tag"},
           {"images", "tag", "x"},
           {"images", "tag", "nope:1", "y"},
           {"images", "label", "nope:1", "a=b"},
           {"images", "ls", "name=="},
       }) {
    auto c = d_->Ctr(args);
    auto b = d_->Berth(args);
    EXPECT_EQ(b.exit_code, c.exit_code) << ::testing::PrintToString(args);
    EXPECT_EQ(Message(b, "berth"), Message(c, "ctr")) << ::testing::PrintToString(args);
  }
}

TEST_F(CliContentIT, LeasesCreateListRemove) {
  auto c = d_->Berth({"leases", "create", "--id", "one", "a=b"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "one\n");
  ASSERT_EQ(d_->Berth({"leases", "create", "--id", "two", "-x", "0"}).exit_code, 0);
  ASSERT_EQ(d_->Ctr({"leases", "create", "--id", "three", "-x", "1h", "k=v"}).exit_code, 0);
  auto generated = d_->Berth({"leases", "create"});
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  EXPECT_FALSE(generated.out.empty());

  auto ls = d_->Berth({"leases", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, d_->Ctr({"leases", "ls"}).out);
  EXPECT_NE(ls.out.find("a=b,containerd.io/gc.expire="), std::string::npos) << ls.out;
  EXPECT_EQ(d_->Berth({"leases", "ls", "-q", "id==two"}).out, "two\n");
  EXPECT_EQ(d_->Berth({"leases", "ls", "-q", "labels.k==v"}).out,
            d_->Ctr({"leases", "ls", "-q", "labels.k==v"}).out);

  auto dup = d_->Berth({"leases", "create", "--id", "one"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_EQ(Message(dup, "berth"), Message(d_->Ctr({"leases", "create", "--id", "one"}), "ctr"));

  auto rm = d_->Berth({"leases", "rm", "one", "two", "--sync"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, "one\ntwo\n");
  auto missing = d_->Berth({"leases", "rm", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(Message(missing, "berth"), Message(d_->Ctr({"leases", "rm", "nope"}), "ctr"));
  EXPECT_EQ(d_->Berth({"leases", "rm"}).exit_code, 0);  // help, as ctr
  EXPECT_EQ(d_->Berth({"leases", "ls", "-q"}).out, d_->Ctr({"leases", "ls", "-q"}).out);
}

}  // namespace
}  // namespace berth::testing
