// hosts.toml (a registry's mirrors and its server) as `images pull --hosts-dir` and the CRI's
// registry.config_path read it.
#include <string_view>

#include "fuzz/fuzz.h"
#include "remotes/hosts.h"

BERTH_FUZZ_TARGET(hosts_toml) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)berth::remotes::ParseHostsToml("/etc/berth/certs.d/registry.example", text);
  return 0;
}
