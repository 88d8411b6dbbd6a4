#include "events/plugin.h"

#include "events/exchange.h"

namespace berth::events {

void RegisterPlugins(plugin::Registry& registry) {
  registry.Add({.type = plugin::kEvent,
                .id = "exchange",  // containerd's id
                .init = [](plugin::InitContext&) -> Result<plugin::Instance> {
                  return plugin::Instance::Of<Exchange>(std::make_shared<Exchange>());
                }});
}

}  // namespace berth::events
