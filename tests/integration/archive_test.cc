// Image archives with the real ctr: `ctr images export` -> `berth images import` and
// `berth images export` -> `ctr images import` keep the image digest and give runnable images;
// a docker-save style archive imports (with the same digests ctr gives it); corrupted archives
// are refused and leave no image record.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "harness.h"

namespace berth::testing {
namespace {

constexpr const char* kImage = "docker.io/berth/busybox:latest";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Runs a shell script; a failure names the script and its output.
RunResult Sh(const std::string& script) { return Exec({"sh", "-ec", script}); }

class ArchiveIT : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: unpacks with overlayfs and runs runc";
    ASSERT_FALSE(Fixtures().empty()) << "fixture images could not be built";
    auto dir = fs::TempDir::Create("berth-archive-it");
    ASSERT_TRUE(dir.has_value());
    tmp_ = std::make_unique<fs::TempDir>(std::move(*dir));
  }

  void TearDown() override {
    for (auto& d : daemons_) {
      if (!d->Running()) continue;
      for (const auto& id : Lines(Berth(*d, {"tasks", "ls", "-q"}).out)) {
        if (id.empty()) continue;
        Berth(*d, {"tasks", "kill", "-s", "SIGKILL", "-a", id});
        Berth(*d, {"tasks", "rm", "-f", id});
      }
      for (const auto& id : Lines(Berth(*d, {"containers", "ls", "-q"}).out)) {
        if (!id.empty()) Berth(*d, {"containers", "rm", id});
      }
      d->Stop();
    }
    daemons_.clear();
    // containerd's shim keeps runc's state in /run/containerd/runc/<ns>; ours keeps it in the
    // daemon's state directory, removed with it.
    ::rmdir(("/run/containerd/runc/" + ns_).c_str());
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((e.path().string() + "/" + ns_).c_str());
    }
  }

  Daemon& NewDaemon() {
    auto d = Daemon::Create();
    EXPECT_TRUE(d);
    EXPECT_TRUE(d->Start()) << d->Log();
    daemons_.push_back(std::move(d));
    return *daemons_.back();
  }

  RunResult Ctr(const Daemon& d, const std::vector<std::string>& args) const {
    return d.Ctr(args, ns_);
  }
  RunResult Berth(const Daemon& d, const std::vector<std::string>& args) const {
    return d.Berth(args, ns_);
  }

  // name -> target digest, from `ctr images ls`.
  std::map<std::string, std::string> Images(const Daemon& d, const std::string& ns = "") const {
    std::map<std::string, std::string> out;
    auto r = d.Ctr({"images", "ls"}, ns.empty() ? ns_ : ns);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto lines = Lines(r.out);
    for (size_t i = 1; i < lines.size(); ++i) {
      auto w = Words(lines[i]);
      if (w.size() >= 3) out[w[0]] = w[2];
    }
    return out;
  }

  // A daemon holding the fixture image, imported by the real ctr.
  Daemon& SourceDaemon() {
    Daemon& d = NewDaemon();
    auto r = Ctr(d, {"images", "import", "--no-unpack", Fixtures() + "/busybox-oci.tar"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return d;
  }

  // `run --rm IMAGE ID echo <word>` through `tool` (berth or ctr) prints the word.
  void ExpectRuns(const Daemon& d, bool with_berth, const std::string& image,
                  const std::string& id) {
    std::vector<std::string> args = {"run", "--rm", image, id, "echo", "ran-" + id};
    auto r = with_berth ? Berth(d, args) : Ctr(d, args);
    EXPECT_EQ(r.exit_code, 0) << r.err << d.Log();
    EXPECT_EQ(r.out, "ran-" + id + "\n");
  }

  std::string Path(const std::string& name) const { return tmp_->Path() + "/" + name; }

  std::string ns_ = "archive-" + std::to_string(::getpid());
  std::unique_ptr<fs::TempDir> tmp_;
  std::vector<std::unique_ptr<Daemon>> daemons_;
};

TEST_F(ArchiveIT, CtrExportThenBerthImportKeepsDigestAndRuns) {
  Daemon& src = SourceDaemon();
  const std::string digest = Images(src)[kImage];
  ASSERT_FALSE(digest.empty());
  auto exported = Ctr(src, {"images", "export", Path("ctr.tar"), kImage});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;

  Daemon& dst = NewDaemon();
  auto imported = Berth(dst, {"images", "import", Path("ctr.tar")});
  ASSERT_EQ(imported.exit_code, 0) << imported.err << dst.Log();
  EXPECT_EQ(imported.out, std::string("unpacking ") + kImage + " (" + digest + ")...done\n");
  EXPECT_EQ(Images(dst)[kImage], digest);
  auto check = Ctr(dst, {"images", "check"});
  EXPECT_NE(check.out.find("complete (2/2)"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("true"), std::string::npos) << "not unpacked: " << check.out;
  ExpectRuns(dst, /*with_berth=*/true, kImage, "imported");

  // Importing the same archive again updates the record in place.
  auto again = Berth(dst, {"images", "import", "--no-unpack", Path("ctr.tar")});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(Images(dst).size(), 1u);

  // Into another namespace of the daemon that holds the blobs already (shared content: the
  // daemon reports them as fully written and nothing is sent again).
  auto other = dst.Berth({"images", "import", "--no-unpack", Path("ctr.tar")}, ns_ + "-other");
  EXPECT_EQ(other.exit_code, 0) << other.err;
  auto listed = dst.Ctr({"images", "ls", "-q"}, ns_ + "-other");
  EXPECT_EQ(listed.out, std::string(kImage) + "\n");
  // Names: --base-name keeps only the archive's names under it (the fixture's is a full
  // io.containerd.image.name, kept verbatim); --digests adds <base>@<digest>.
  auto named = Berth(dst, {"images", "import", "--no-unpack", "--base-name",
                           "docker.io/berth/busybox", "--digests", Path("ctr.tar")});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  auto images = Images(dst);
  EXPECT_EQ(images["docker.io/berth/busybox@" + digest], digest);
  EXPECT_EQ(images[kImage], digest);
}

TEST_F(ArchiveIT, BerthExportThenCtrImportKeepsDigestAndRuns) {
  Daemon& src = SourceDaemon();
  const std::string digest = Images(src)[kImage];
  ASSERT_FALSE(digest.empty());
  auto ours = Berth(src, {"images", "export", Path("berth.tar"), kImage});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  auto theirs = Ctr(src, {"images", "export", Path("ctr.tar"), kImage});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;

  // Same entries, and the same documents byte for byte as ctr writes them.
  auto list = [](const std::string& tar) {
    auto r = Exec({"tar", "-tf", tar});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(list(Path("berth.tar")), list(Path("ctr.tar")));
  for (const char* doc : {"oci-layout", "index.json", "manifest.json"}) {
    auto a = Exec({"tar", "-xOf", Path("berth.tar"), doc});
    auto b = Exec({"tar", "-xOf", Path("ctr.tar"), doc});
    EXPECT_EQ(a.exit_code, 0) << doc << ": " << a.err;
    EXPECT_EQ(a.out, b.out) << doc;
  }

  Daemon& dst = NewDaemon();
  auto imported = Ctr(dst, {"images", "import", Path("berth.tar")});
  ASSERT_EQ(imported.exit_code, 0) << imported.err << dst.Log();
  EXPECT_NE(imported.out.find("unpacking " + std::string(kImage) + " (" + digest + ")...done"),
            std::string::npos)
      << imported.out;
  EXPECT_EQ(Images(dst)[kImage], digest);
  ExpectRuns(dst, /*with_berth=*/false, kImage, "ctrimported");

  // To stdout and back in through stdin.
  auto piped = Sh(BinPath("berth") + " -a " + src.Socket() + " -n " + ns_ + " images export - " +
                  kImage + " | " + BinPath("berth") + " -a " + dst.Socket() + " -n " + ns_ +
                  " images import --no-unpack --index-name piped/index:1 -");
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  auto images = Images(dst);
  EXPECT_EQ(images[kImage], digest);
  EXPECT_EQ(images.count("piped/index:1"), 1u);
}

TEST_F(ArchiveIT, DockerSaveArchiveImportsLikeCtr) {
  // A `docker save` layout from the fixture: <config hex>.json, <n>/layer.tar (uncompressed),
  // manifest.json with a short RepoTag, repositories.
  const std::string work = Path("docker");
  auto built =
      Sh("mkdir -p " + work + "/oci " + work + "/save && cd " + work + "/oci && tar -xf " +
         Fixtures() +
         "/busybox-oci.tar\n"
         "cfg=$(jq -r '.[0].Config' manifest.json)\n"
         "cp \"$cfg\" ../save/$(basename \"$cfg\").json\n"
         "layers=''\n"
         "n=0\n"
         "for l in $(jq -r '.[0].Layers[]' manifest.json); do\n"
         "  n=$((n+1)); mkdir -p ../save/layer$n\n"
         "  if gzip -t \"$l\" 2>/dev/null; then gzip -dc \"$l\" > ../save/layer$n/layer.tar;\n"
         "  else cp \"$l\" ../save/layer$n/layer.tar; fi\n"
         "  layers=\"$layers${layers:+,}\\\"layer$n/layer.tar\\\"\"\n"
         "done\n"
         "cd ../save\n"
         "printf '[{\"Config\":\"%s\",\"RepoTags\":[\"busybox:saved\"],\"Layers\":[%s]}]' "
         "\"$(basename \"$cfg\").json\" \"$layers\" > manifest.json\n"
         "printf '{\"busybox\":{\"saved\":\"x\"}}' > repositories\n"
         "tar -cf ../save.tar *\n");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::string name = "docker.io/library/busybox:saved";

  Daemon& ours = NewDaemon();
  auto r = Berth(ours, {"images", "import", work + "/save.tar"});
  ASSERT_EQ(r.exit_code, 0) << r.err << ours.Log();
  EXPECT_EQ(r.out.rfind("unpacking " + name + " (sha256:", 0), 0u) << r.out;
  ExpectRuns(ours, /*with_berth=*/true, name, "saved");

  Daemon& theirs = NewDaemon();
  auto c = Ctr(theirs, {"images", "import", "--no-unpack", work + "/save.tar"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string digest = Images(theirs)[name];
  EXPECT_FALSE(digest.empty());
  EXPECT_EQ(Images(ours)[name], digest);  // the same docker manifest and index, byte for byte
}

TEST_F(ArchiveIT, CorruptedArchivesAreRefusedWithoutImages) {
  Daemon& d = NewDaemon();
  const std::string x = Path("x");
  auto unpacked =
      Sh("mkdir -p " + x + " && cd " + x + " && tar -xf " + Fixtures() + "/busybox-oci.tar");
  ASSERT_EQ(unpacked.exit_code, 0) << unpacked.err;
  struct Case {
    std::string name;
    std::string script;  // run in a copy of the extracted archive; leaves ../<name>.tar
    std::string error;   // part of the message
  };
  const std::vector<Case> cases = {
      {"flipped",
       "l=$(jq -r '.[0].Layers[0]' manifest.json); printf 'X' | dd of=$l bs=1 seek=100 "
       "conv=notrunc 2>/dev/null",
       "its name says"},
      {"missing", "rm $(jq -r '.[0].Config' manifest.json)", "is missing from the archive"},
      {"badjson", "printf '{\"manifests\": [' > index.json", "index.json"},
      {"nolayout", "rm oci-layout manifest.json", "unrecognized image format"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = Path(c.name);
    auto made = Sh("cp -a " + x + " " + dir + " && cd " + dir + " && " + c.script +
                   " && tar -cf ../" + c.name + ".tar *");
    ASSERT_EQ(made.exit_code, 0) << made.err;
    // A namespace per case: blobs an earlier case committed are not seen (they would be
    // until GC removes them).
    const std::string ns = ns_ + "-" + c.name;
    auto r = d.Berth({"images", "import", Path(c.name + ".tar")}, ns);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(Images(d, ns).empty());
  }
  // An entry escaping the archive root.
  auto evil = Sh("cd " + x + " && tar -cf " + Path("evil.tar") +
                 " --transform 's,^oci-layout$,../oci-layout,' *");
  ASSERT_EQ(evil.exit_code, 0) << evil.err;
  auto listed = Exec({"tar", "-tf", Path("evil.tar")});
  ASSERT_NE(listed.out.find("../oci-layout"), std::string::npos) << listed.out;
  auto r = Berth(d, {"images", "import", Path("evil.tar")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("escapes the archive"), std::string::npos) << r.err;
  EXPECT_TRUE(Images(d).empty());
  // Not a tar at all, and a missing file.
  auto junk = Sh("head -c 4096 /dev/urandom > " + Path("junk.tar"));
  ASSERT_EQ(junk.exit_code, 0);
  EXPECT_NE(Berth(d, {"images", "import", Path("junk.tar")}).exit_code, 0);
  auto missing = Berth(d, {"images", "import", Path("nope.tar")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("nope.tar"), std::string::npos) << missing.err;
  EXPECT_TRUE(Images(d).empty());
  // Export of an unknown image fails and leaves no file.
  auto ex = Berth(d, {"images", "export", Path("out.tar"), "docker.io/no/such:image"});
  EXPECT_NE(ex.exit_code, 0);
  EXPECT_NE(ex.err.find("not found"), std::string::npos) << ex.err;
  EXPECT_NE(::access(Path("out.tar").c_str(), F_OK), 0);

  // The blobs the failed imports left in ingests or in the store do not get in the way of a
  // good archive.
  auto good = Berth(d, {"images", "import", "--no-unpack", Fixtures() + "/busybox-oci.tar"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(Images(d).count(kImage), 1u);
}

}  // namespace
}  // namespace berth::testing
