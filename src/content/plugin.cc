#include "content/plugin.h"

#include "content/local/store.h"

namespace berth::content {

void RegisterPlugins(plugin::Registry& registry) {
  registry.Add({.type = plugin::kContent,
                .id = "content",
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto store, LocalStore::Open(ic.Root()));
                  ic.Exports()["root"] = ic.Root();
                  std::shared_ptr<Store> shared(std::move(store));
                  return plugin::Instance::Of<Store>(std::move(shared));
                }});
}

}  // namespace berth::content
