#pragma once
// The snapshotter conformance suite (containerd's snapshots/testsuite): one TEST_P suite every
// implementation runs, through a factory. Built as an OBJECT library so the TEST_P registrations
// survive linking; a test binary instantiates it:
//
//   INSTANTIATE_TEST_SUITE_P(Overlay, SnapshotterSuite,
//       testing::Values(testsuite::SnapshotterFactory{"overlay", &MakeOverlay}),
//       testsuite::FactoryName);
//
// Every case mounts what the snapshotter returns for real (common/mount.h MountAll), and unmounts
// it again, in the test or in TearDown when the test failed half-way. Needs root.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "snapshots/snapshotter.h"

namespace berth::snapshots::testsuite {

// What a factory builds for one test.
struct Fixture {
  std::unique_ptr<snapshots::Snapshotter> snapshotter;
  // Runs after the snapshotter is destroyed and the suite's mounts are gone (e.g. unmount a
  // loop-backed filesystem). Optional.
  std::function<void()> cleanup;
  // Leaves what a crash would, in this implementation's layout under the root (half-built
  // new-XXXXXX directories, orphaned snapshot directories, ...) and returns the paths Cleanup()
  // must remove. Optional: without it the crash case is skipped.
  std::function<Result<std::vector<std::string>>()> make_crash_leftovers;
};

struct SnapshotterFactory {
  std::string name;  // letters, digits, '_' (a gtest parameter name)
  // Builds the snapshotter on `root`, a fresh empty directory; `scratch` is another one the
  // factory may use (images, helper files). Any error fails the case, except an Unavailable
  // from a factory that declares `host_dependent`: the environment cannot host the
  // implementation (no loop devices, no btrfs in the kernel), and the case is skipped with that
  // reason.
  std::function<Result<Fixture>(const std::string& root, const std::string& scratch)> create;
  bool host_dependent = false;
};

std::string FactoryName(const testing::TestParamInfo<SnapshotterFactory>& info);
// gtest prints a parameter with this (test listings show the name, not the bytes).
void PrintTo(const SnapshotterFactory& factory, std::ostream* os);

class SnapshotterSuite : public testing::TestWithParam<SnapshotterFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  snapshots::Snapshotter& S() { return *fixture_.snapshotter; }
  const Context& Ctx() const { return ctx_; }
  const std::string& Root() const { return root_; }

  // Mounts `mounts` on a fresh directory under the work dir and returns it; TearDown unmounts
  // whatever is still mounted.
  std::string MountNew(const std::vector<mount::Mount>& mounts);
  void Unmount(const std::string& target);
  // Mounts the mounts of `key` (Mounts()), runs fn on the directory, unmounts.
  void WithMounted(const std::string& key, const std::function<void(const std::string&)>& fn);
  // Prepare(key, parent), mount, write `files` (path -> content; "" content with a trailing '/'
  // path = directory), unmount, Commit(name).
  void CommitLayer(const std::string& name, const std::string& parent,
                   const std::vector<std::pair<std::string, std::string>>& files);

  Fixture fixture_;

 private:
  Context ctx_;
  std::unique_ptr<fs::TempDir> tmp_;
  std::string root_;
  std::string work_;
  std::vector<std::string> mounted_;
  int next_mount_ = 0;
};

// File helpers for the cases.
void WriteFile(const std::string& path, const std::string& content);
std::string ReadFileOrDie(const std::string& path);
bool Exists(const std::string& path);

}  // namespace berth::snapshots::testsuite
