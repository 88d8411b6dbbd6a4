#pragma once
// One fuzz target per file: BERTH_FUZZ_TARGET(name) { ... data, size ... }.
//
// Built with BERTH_FUZZ (the clang `fuzz` preset) it is libFuzzer's LLVMFuzzerTestOneInput, one
// executable per target (fuzz_<name>). Built otherwise (every preset's fuzz_replay_test) it
// registers the body under `name`, and the replay test runs it over fuzz/corpus/<name>/: the
// seeds and every input that once crashed, so the ordinary suite (release and ASan) keeps them
// passing.
#include <cstddef>
#include <cstdint>

#ifdef BERTH_FUZZ_REPLAY
namespace berth::fuzz {
using TargetFn = int (*)(const uint8_t* data, size_t size);
bool Register(const char* name, TargetFn fn);
}  // namespace berth::fuzz
#define BERTH_FUZZ_TARGET(name)                                     \
  static int BerthFuzz_##name(const uint8_t* data, size_t size);    \
  [[maybe_unused]] static const bool berth_fuzz_registered_##name = \
      ::berth::fuzz::Register(#name, BerthFuzz_##name);             \
  static int BerthFuzz_##name(const uint8_t* data, size_t size)
#else
#define BERTH_FUZZ_TARGET(name) \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#endif
