// Replays every fuzz target over its corpus (fuzz/corpus/<target>/: the seeds and every input a
// fuzzer ever crashed on), in the ordinary suite, so what once crashed stays fixed in every
// build, sanitized or not. A failing input aborts the process (the targets trap), which ctest
// reports with the target's name in the test's name.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "fuzz/fuzz.h"

#ifndef BERTH_FUZZ_CORPUS_DIR
#error "BERTH_FUZZ_CORPUS_DIR must name fuzz/corpus"
#endif

namespace berth::fuzz {

std::map<std::string, TargetFn>& Targets() {
  static auto* targets = new std::map<std::string, TargetFn>();
  return *targets;
}

bool Register(const char* name, TargetFn fn) {
  Targets()[name] = fn;
  return true;
}

namespace {

// The targets `make fuzz` runs (fuzz/CMakeLists.txt): each is registered and has a corpus.
const char* const kTargets[] = {"reference", "filters", "hosts_toml", "config",       "image",
                                "tar_apply", "ttrpc",   "events",     "content_write"};

class FuzzReplay : public ::testing::TestWithParam<const char*> {};

TEST_P(FuzzReplay, CorpusPasses) {
  const std::string name = GetParam();
  auto it = Targets().find(name);
  ASSERT_NE(it, Targets().end()) << "fuzz target " << name << " is not linked into the replay";
  const std::filesystem::path dir = std::filesystem::path(BERTH_FUZZ_CORPUS_DIR) / name;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is missing";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << dir << " has no inputs";
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string input = ss.str();
    SCOPED_TRACE(f.string());
    EXPECT_EQ(it->second(reinterpret_cast<const uint8_t*>(input.data()), input.size()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace berth::fuzz
