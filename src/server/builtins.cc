#include "server/builtins.h"

#include "content/plugin.h"
#include "diff/plugin.h"
#include "metadata/plugin.h"
#include "services/plugins.h"
#include "snapshots/plugin.h"

namespace berth::server {

void RegisterBuiltins(plugin::Registry& registry) {
  content::RegisterPlugins(registry);
  snapshots::RegisterPlugins(registry);
  metadata::RegisterPlugins(registry);
  diff::RegisterPlugins(registry);
  services::RegisterAll(registry);
}

}  // namespace berth::server
