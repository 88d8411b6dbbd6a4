// berth's list commands (table and --format json) against golden files in tests/golden, on a
// fresh berthd with a fixed state in namespace "golden": labelled namespace, leases with fixed
// ids, two ingested blobs, the busybox fixture imported with ctr, a container and a snapshot.
// Volatile parts (times, ages, digests and sizes of the fixture, column padding) are masked.
// BERTH_UPDATE_GOLDEN=1 rewrites the golden files from the current output instead of comparing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness.h"

#ifndef BERTH_GOLDEN_DIR
#error "BERTH_GOLDEN_DIR must name tests/golden"
#endif

namespace berth::testing {
namespace {

constexpr const char* kNs = "golden";
constexpr const char* kImage = "docker.io/berth/busybox:latest";

std::string Replace(const std::string& text, const std::string& pattern, const std::string& with) {
  return std::regex_replace(text, std::regex(pattern), with);
}

// Masks what changes from run to run or machine to machine; `sizes`: also byte counts (the
// fixture's layers hold the host's busybox binary; snapshot usage depends on the filesystem).
std::string Mask(std::string text, bool table, bool sizes) {
  text = Replace(text, R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))", "<time>");
  text = Replace(text, "sha256:[0-9a-f]{64}", "sha256:<digest>");
  text = Replace(text, "/[^ \"]*/berth-it-[^/\"]+", "<dir>");  // the daemon's temp dir
  // go-units HumanDuration: the test's objects are seconds old, more when the machine is slow.
  text = Replace(text, R"(Less than a second|About a minute|About an hour)", "<age>");
  text = Replace(text, R"(\d+ (seconds?|minutes|hours|days|weeks|months|years))", "<age>");
  if (sizes) {
    text = Replace(text, R"(\d+(\.\d+)? (B|KiB|MiB|GiB))", "<size>");
    text = Replace(text, R"re("(size|inodes)": \d+)re", "\"$1\": \"<n>\"");
    if (table) text = Replace(text, R"(\b\d+\b)", "<n>");
  }
  if (table) {
    // Column widths follow the masked values; alignment itself is compared with ctr elsewhere.
    text = Replace(text, "\t+", "\t");
    text = Replace(text, " {2,}", " ");
  }
  return text;
}

bool Updating() {
  const char* v = std::getenv("BERTH_UPDATE_GOLDEN");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

// Under CI (.ci/run exports BERTH_CI; most CI systems export CI) the goldens are only compared:
// rewriting them there would make every comparison pass.
bool UnderCi() {
  for (const char* name : {"BERTH_CI", "CI"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0' && std::string(v) != "0" && std::string(v) != "false") {
      return true;
    }
  }
  return false;
}

class CliGoldenIT : public ::testing::Test {
 protected:
  void SetUp() override {
    Daemon::Options options;
    // No collection while the test runs: ctr's temporary leases end with deletions, which
    // would schedule one and take the ingested blobs before they are labelled.
    options.extra_config =
        "[plugins.\"io.containerd.gc.v1.scheduler\"]\n  startup_delay = \"1h\"\n"
        "  schedule_delay = \"1h\"\n";
    d_ = Daemon::Create(std::move(options));
    ASSERT_TRUE(d_->Start()) << d_->Log();
    ASSERT_FALSE(Fixtures().empty());

    ASSERT_NO_FATAL_FAILURE(
        Ok(d_->Ctr({"namespaces", "create", kNs, "team=berth", "tier=golden"})));
    ASSERT_NO_FATAL_FAILURE(
        Ok(d_->Ctr({"images", "import", Fixtures() + "/busybox-oci.tar"}, kNs)));
    ASSERT_NO_FATAL_FAILURE(
        Ok(d_->Ctr({"leases", "create", "--id", "lease-a", "-x", "0", "owner=golden"}, kNs)));
    ASSERT_NO_FATAL_FAILURE(Ok(d_->Ctr({"leases", "create", "--id", "lease-b", "-x", "0"}, kNs)));
    ASSERT_NO_FATAL_FAILURE(
        Ok(d_->Berth({"containers", "create", "--label", "golden=1", kImage, "golden-c1"}, kNs)));
    ASSERT_NO_FATAL_FAILURE(Ok(d_->Ctr({"snapshots", "prepare", "golden-active"}, kNs)));
    for (const auto& [ref, data] : std::vector<std::pair<std::string, std::string>>{
             {"blob-one", "golden blob one\n"}, {"blob-two", "golden blob two, longer\n"}}) {
      auto r = Exec({"ctr", "-a", d_->Socket(), "-n", kNs, "content", "ingest", ref}, data);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    // Labels select the two blobs from the image's (machine-dependent) ones.
    for (const auto& d : BlobDigests()) {
      ASSERT_NO_FATAL_FAILURE(Ok(d_->Ctr({"content", "label", d, "golden=1"}, kNs)));
    }
  }

  // The digests of the two ingested blobs (sha256 of their fixed text).
  std::vector<std::string> BlobDigests() {
    std::vector<std::string> out;
    for (const char* data : {"golden blob one\n", "golden blob two, longer\n"}) {
      auto r = Exec({"sha256sum"}, data);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      out.push_back("sha256:" + r.out.substr(0, 64));
    }
    return out;
  }

  static void Ok(const RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r.out << r.err; }

  // Runs berth -n golden ARGS (--format FORMAT) and compares with tests/golden/NAME.{txt,json}.
  void Golden(const std::string& name, std::vector<std::string> args, bool sizes = false) {
    for (const std::string format : {"table", "json"}) {
      auto full = args;
      full.push_back("--format");
      full.push_back(format);
      auto r = d_->Berth(full, kNs);
      ASSERT_EQ(r.exit_code, 0) << ::testing::PrintToString(full) << ": " << r.err;
      bool table = format == "table";
      if (!table) {
        // Valid JSON: an array of objects.
        auto parsed = nlohmann::json::parse(r.out, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << r.out;
        ASSERT_TRUE(parsed.is_array()) << r.out;
        for (const auto& row : parsed) EXPECT_TRUE(row.is_object()) << row;
      }
      std::string got = Mask(r.out, table, sizes);
      std::string path = std::string(BERTH_GOLDEN_DIR) + "/" + name + (table ? ".txt" : ".json");
      if (Updating()) {
        ASSERT_FALSE(UnderCi()) << "BERTH_UPDATE_GOLDEN rewrites " << path
                                << " instead of comparing: refused under CI";
        std::ofstream(path) << got;
        continue;
      }
      std::string want = ReadText(path);
      EXPECT_FALSE(want.empty()) << path << " is missing: run with BERTH_UPDATE_GOLDEN=1";
      EXPECT_EQ(got, want) << "berth " << ::testing::PrintToString(full) << " vs " << path;
    }
  }

  std::unique_ptr<Daemon> d_;
};

TEST_F(CliGoldenIT, ListCommandsMatchGoldenFiles) {
  Golden("namespaces_ls", {"namespaces", "ls"});
  Golden("leases_ls", {"leases", "ls"});
  Golden("images_ls", {"images", "ls"}, /*sizes=*/true);
  Golden("content_ls", {"content", "ls", "labels.golden==1"});
  Golden("content_active", {"content", "active"});
  Golden("containers_ls", {"containers", "ls"});
  Golden("tasks_ls", {"tasks", "ls"});
  Golden("snapshots_ls", {"snapshots", "ls"});
  Golden("snapshots_usage", {"snapshots", "usage", "golden-active"}, /*sizes=*/true);
  Golden("plugins_ls", {"plugins", "ls", "id==bolt"});
}

// The same tables as live ctr prints them from the same daemon: byte for byte where nothing in
// them moves between the two runs, else after the goldens' masking (ages, sizes).
TEST_F(CliGoldenIT, TablesAreCtrs) {
  struct Case {
    std::vector<std::string> args;
    bool masked = false;
    // ctr prints a Go map in random order (plugin exports): the same lines, in any order.
    bool any_line_order = false;
  };
  auto sorted_lines = [](const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  const std::vector<Case> cases = {
      {{"namespaces", "ls"}},
      {{"leases", "ls"}},
      {{"images", "ls"}},
      {{"content", "ls", "labels.golden==1"}, /*masked=*/true},
      {{"content", "active"}},
      {{"containers", "ls"}},
      {{"tasks", "ls"}},
      {{"snapshots", "ls"}},
      {{"snapshots", "usage", "golden-active"}},
      {{"plugins", "ls", "id==bolt"}},
      {{"plugins", "ls"}},
      {{"plugins", "ls", "-d"}, /*masked=*/false, /*any_line_order=*/true},
  };
  for (const auto& c : cases) {
    auto ours = d_->Berth(c.args, kNs);
    auto theirs = d_->Ctr(c.args, kNs);
    ASSERT_EQ(ours.exit_code, 0) << ::testing::PrintToString(c.args) << ": " << ours.err;
    ASSERT_EQ(theirs.exit_code, 0) << ::testing::PrintToString(c.args) << ": " << theirs.err;
    if (c.any_line_order) {
      EXPECT_EQ(sorted_lines(ours.out), sorted_lines(theirs.out))
          << ::testing::PrintToString(c.args) << "\nberth:\n"
          << ours.out << "ctr:\n"
          << theirs.out;
    } else if (c.masked) {
      EXPECT_EQ(Mask(ours.out, true, false), Mask(theirs.out, true, false))
          << ::testing::PrintToString(c.args) << "\nberth:\n"
          << ours.out << "ctr:\n"
          << theirs.out;
    } else {
      EXPECT_EQ(ours.out, theirs.out) << ::testing::PrintToString(c.args) << "\nberth:\n"
                                      << ours.out << "ctr:\n"
                                      << theirs.out;
    }
  }
}

TEST_F(CliGoldenIT, QuietIgnoresFormat) {
  auto r = d_->Berth({"containers", "ls", "-q", "--format", "json"}, kNs);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "golden-c1\n");
  auto bad = d_->Berth({"images", "ls", "--format", "yaml"}, kNs);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("yaml"), std::string::npos) << bad.err;
}

TEST_F(CliGoldenIT, ErrorsSuggestCloseNames) {
  auto image = d_->Berth({"containers", "create", "berth/busybx", "c2"}, kNs);
  EXPECT_EQ(image.exit_code, 1);
  EXPECT_EQ(image.err,
            "berth: image \"berth/busybx\" not found in namespace \"golden\"; did you mean "
            "\"docker.io/berth/busybox:latest\"?\n");
  auto tag = d_->Berth({"containers", "create", "docker.io/berth/busybox:1.0", "c3"}, kNs);
  EXPECT_EQ(tag.exit_code, 1);
  EXPECT_EQ(tag.err,
            "berth: image \"docker.io/berth/busybox:1.0\" not found in namespace \"golden\"; did "
            "you mean \"docker.io/berth/busybox:latest\"?\n");
  auto container = d_->Berth({"tasks", "kill", "golden-c2"}, kNs);
  EXPECT_EQ(container.exit_code, 1);
  EXPECT_EQ(container.err,
            "berth: container \"golden-c2\" not found in namespace \"golden\"; did you mean "
            "\"golden-c1\"?\n");
  // Nothing close: the daemon's text, as ctr prints it.
  auto far = d_->Berth({"containers", "info", "zzzzzzzzzzzzzz"}, kNs);
  EXPECT_EQ(far.err, "berth: container \"zzzzzzzzzzzzzz\" in namespace \"golden\": not found\n");
  auto command = d_->Berth({"imagse", "ls"}, kNs);
  EXPECT_EQ(command.exit_code, 1);
  EXPECT_EQ(command.err,
            "berth: unknown command \"imagse\" for \"berth\"; did you mean \"images\"?\n");
}

// Every command that takes an image takes docker's short name of a stored one (issue 15).
TEST_F(CliGoldenIT, ShortImageNamesWorkEverywhere) {
  auto created = d_->Berth({"containers", "create", "berth/busybox", "short-c"}, kNs);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_NE(d_->Ctr({"containers", "info", "short-c"}, kNs)
                .out.find("\"Image\": \"docker.io/berth/busybox:latest\""),
            std::string::npos);
  ASSERT_EQ(d_->Berth({"containers", "rm", "short-c"}, kNs).exit_code, 0);

  auto labelled = d_->Berth({"images", "label", "berth/busybox", "short=1"}, kNs);
  ASSERT_EQ(labelled.exit_code, 0) << labelled.err;
  EXPECT_NE(labelled.out.find("short=1"), std::string::npos) << labelled.out;
  auto tagged = d_->Berth({"images", "tag", "berth/busybox", "docker.io/berth/copy:1"}, kNs);
  ASSERT_EQ(tagged.exit_code, 0) << tagged.err;
  EXPECT_NE(d_->Ctr({"images", "ls", "-q"}, kNs).out.find("docker.io/berth/copy:1\n"),
            std::string::npos);
  auto removed = d_->Berth({"images", "rm", "berth/copy:1"}, kNs);
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(removed.out, "docker.io/berth/copy:1\n");
  EXPECT_EQ(d_->Ctr({"images", "ls", "-q"}, kNs).out.find("docker.io/berth/copy:1"),
            std::string::npos);
  // A name that is neither stored nor the short form of a stored one fails as before.
  auto missing = d_->Berth({"images", "label", "berth/nothing", "a=b"}, kNs);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("berth/nothing"), std::string::npos) << missing.err;
}

// `berth oci spec` prints the default spec ctr prints (compared as JSON with live ctr).
TEST_F(CliGoldenIT, OciSpecIsCtrs) {
  auto ours = d_->Berth({"oci", "spec"});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  auto theirs = Exec({"ctr", "oci", "spec"});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  auto a = nlohmann::json::parse(ours.out, nullptr, false);
  auto b = nlohmann::json::parse(theirs.out, nullptr, false);
  ASSERT_FALSE(a.is_discarded()) << ours.out;
  ASSERT_FALSE(b.is_discarded()) << theirs.out;
  EXPECT_EQ(a, b) << "berth:\n" << ours.out << "\nctr:\n" << theirs.out;
}

}  // namespace
}  // namespace berth::testing
