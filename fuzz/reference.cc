// Image references (docker/distribution grammar plus containerd's normalisation).
#include <string_view>

#include "common/reference.h"
#include "fuzz/fuzz.h"

BERTH_FUZZ_TARGET(reference) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto r = berth::reference::Parse(text); r) {
    // What parses strictly prints back to text that parses to the same reference.
    std::string again = r->String();
    auto r2 = berth::reference::Parse(again);
    if (!r2 || r2->String() != again) __builtin_trap();
  }
  if (auto n = berth::reference::ParseNormalized(text); n) {
    (void)n->FamiliarString();
    if (!berth::reference::ParseNormalized(n->String())) __builtin_trap();
  }
  return 0;
}
