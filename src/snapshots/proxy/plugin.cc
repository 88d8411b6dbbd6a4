#include "snapshots/proxy/plugin.h"

#include <memory>

#include "snapshots/proxy/client.h"

namespace berth::snapshots::proxy {

Status RegisterPlugins(plugin::Registry& registry, const std::vector<PluginSpec>& proxies) {
  for (const auto& p : proxies) {
    for (const auto& r : registry.All()) {
      if (r->type == plugin::kSnapshot && r->id == p.name) {
        return AlreadyExists("proxy plugin " + p.name + ": " + r->Uri() + " is already registered");
      }
    }
  }
  for (const auto& p : proxies) {
    registry.Add({.type = plugin::kSnapshot,
                  .id = p.name,
                  .init = [name = p.name, address = p.address](
                              plugin::InitContext& ic) -> Result<plugin::Instance> {
                    ic.Exports()["address"] = address;
                    // Connects lazily, as a gRPC client conn does: a server that is not up yet
                    // shows as Unavailable on the first call.
                    std::shared_ptr<snapshots::Snapshotter> s = Snapshotter::Connect(name, address);
                    return plugin::Instance::Of<snapshots::Snapshotter>(std::move(s));
                  }});
  }
  return Ok();
}

}  // namespace berth::snapshots::proxy
