#include "metadata/plugin.h"

#include "metadata/db.h"

namespace berth::metadata {

void RegisterPlugins(plugin::Registry& registry) {
  registry.Add({
      .type = plugin::kMetadata,
      .id = "bolt",
      .requires_types = {plugin::kContent, plugin::kSnapshot},
      .config_defaults = "content_sharing_policy = \"shared\"\n",
      .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
        std::string dir = ic.Root() + "/meta.lmdb";
        BERTH_ASSIGN_OR_RETURN(auto db, Db::Open(dir));
        ic.Exports()["path"] = dir;
        ic.Exports()["policy"] = "shared";
        return plugin::Instance::Of<Db>(std::shared_ptr<Db>(std::move(db)));
      },
  });
}

}  // namespace berth::metadata
