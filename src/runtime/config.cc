#include "runtime/config.h"

#include <fmt/format.h>

namespace berth::runtime {

std::map<std::string, std::string> Config::DefaultShims() {
  return {{"io.containerd.runc.v2", kBerthShim}, {"io.containerd.berth.v2", kBerthShim}};
}

Result<Config> Config::FromToml(const toml::table& table) {
  Config c;
  if (const auto* node = table.get("platforms")) {
    const auto* arr = node->as_array();
    if (arr == nullptr) return InvalidArgument("runtime config: platforms must be an array");
    c.platforms.clear();
    for (const auto& p : *arr) {
      auto s = p.value<std::string>();
      if (!s) return InvalidArgument("runtime config: platforms must be strings");
      c.platforms.push_back(*s);
    }
  }
  if (const auto* node = table.get("sched_core")) {
    auto b = node->value<bool>();
    if (!b) return InvalidArgument("runtime config: sched_core must be a boolean");
    c.sched_core = *b;
  }
  if (const auto* node = table.get("shims")) {
    const auto* t = node->as_table();
    if (t == nullptr) return InvalidArgument("runtime config: shims must be a table");
    for (const auto& [key, value] : *t) {
      auto s = value.value<std::string>();
      if (!s || s->empty()) {
        return InvalidArgument(fmt::format(
            "runtime config: shims.{:?} must be a shim binary name or absolute path", key.str()));
      }
      c.shims[std::string(key.str())] = *s;
    }
  }
  return c;
}

std::string Config::DefaultToml() {
  return "platforms = [\"linux/amd64\"]\n"
         "sched_core = false\n"
         "[shims]\n"
         "\"io.containerd.berth.v2\" = \"containerd-shim-berth-v2\"\n"
         "\"io.containerd.runc.v2\" = \"containerd-shim-berth-v2\"\n";
}

}  // namespace berth::runtime
