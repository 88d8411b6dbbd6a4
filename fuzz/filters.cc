// containerd's filter syntax: parsed, then matched against a fixed object with plain fields and
// a label map (every operator, quoting and regexp path runs).
#include <map>
#include <string>

#include "common/filters.h"
#include "fuzz/fuzz.h"

BERTH_FUZZ_TARGET(filters) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto filter = berth::filters::Parse(text);
  if (!filter) return 0;
  static const std::map<std::string, std::string> labels = {
      {"a", "1"}, {"a.b", "two"}, {"containerd.io/gc.ref.content", "sha256:00"}, {"", "empty"}};
  auto adaptor = berth::filters::MakeAdaptor(
      {{"name", "docker.io/library/busybox:latest"}, {"target.digest", "sha256:abc"}, {"id", ""}},
      {{"labels", &labels}});
  (void)filter->Match(adaptor);
  auto all = berth::filters::ParseAll({text, text});
  if (all) (void)all->Match(adaptor);
  return 0;
}
