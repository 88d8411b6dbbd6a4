#include "runtime/plugin.h"

#include "common/log.h"
#include "events/exchange.h"
#include "metadata/containers.h"
#include "metadata/db.h"
#include "runtime/manager.h"

namespace berth::runtime {

void RegisterPlugins(plugin::Registry& registry) {
  registry.Add({
      .type = plugin::kRuntimeV2,
      .id = kPluginId,
      .requires_types = {plugin::kEvent, plugin::kMetadata},
      .config_defaults = Config::DefaultToml(),
      .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
        BERTH_ASSIGN_OR_RETURN(Config config, Config::FromToml(ic.Config()));
        for (const auto& p : config.platforms) {
          auto slash = p.find('/');
          ic.Platforms().push_back(
              {.os = p.substr(0, slash),
               .architecture = slash == std::string::npos ? "" : p.substr(slash + 1)});
        }
        BERTH_ASSIGN_OR_RETURN(auto* exchange, ic.GetSingle<events::Exchange>(plugin::kEvent));
        BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
        auto containers = std::make_shared<metadata::ContainerStore>(*db);
        ManagerOptions options{
            .root = ic.Root(),
            .state = ic.State(),
            .grpc_address = ic.Options().grpc_address,
            .ttrpc_address = ic.Options().ttrpc_address,
            .config = std::move(config),
            .debug = log::Enabled(log::Level::kDebug),
            .publisher = exchange,
            .container_runtime = [containers](const Context& ctx,
                                              const std::string& id) -> Result<std::string> {
              BERTH_ASSIGN_OR_RETURN(auto c, containers->Get(ctx, id));
              return c.runtime.name;
            }};
        BERTH_ASSIGN_OR_RETURN(auto manager, TaskManager::Open(std::move(options)));
        return plugin::Instance::Of<TaskManager>(std::shared_ptr<TaskManager>(std::move(manager)));
      },
  });
}

}  // namespace berth::runtime
