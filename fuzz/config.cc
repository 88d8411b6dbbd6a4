// berthd's config.toml (containerd's version 2 format, plugin tables included).
#include <string_view>

#include "fuzz/fuzz.h"
#include "server/config.h"

BERTH_FUZZ_TARGET(config) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)berth::server::Config::Parse(text, "fuzz.toml");
  return 0;
}
