#include "server/builtins.h"

#include "common/log.h"
#include "content/plugin.h"
#include "diff/plugin.h"
#include "metadata/plugin.h"
#include "runtime/plugin.h"
#include "services/plugins.h"
#include "snapshots/plugin.h"
#include "snapshots/proxy/plugin.h"

namespace berth::server {

void RegisterBuiltins(plugin::Registry& registry) {
  content::RegisterPlugins(registry);
  snapshots::RegisterPlugins(registry);
  metadata::RegisterPlugins(registry);
  diff::RegisterPlugins(registry);
  runtime::RegisterPlugins(registry);
  services::RegisterAll(registry);
}

Status RegisterProxyPlugins(plugin::Registry& registry,
                            const std::map<std::string, ProxyPlugin>& proxy_plugins) {
  std::vector<snapshots::proxy::PluginSpec> snapshotters;
  for (const auto& [name, pp] : proxy_plugins) {
    if (pp.type == "snapshot") {
      snapshotters.push_back({.name = name, .address = pp.address});
    } else {
      log::L().With("name", name).With("type", pp.type).Warn("unsupported proxy plugin type");
    }
  }
  return snapshots::proxy::RegisterPlugins(registry, snapshotters);
}

}  // namespace berth::server
