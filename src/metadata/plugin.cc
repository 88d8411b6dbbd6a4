#include "metadata/plugin.h"

#include "content/content.h"
#include "metadata/db.h"
#include "metadata/gc_scheduler.h"
#include "snapshots/snapshotter.h"

namespace berth::metadata {

void RegisterPlugins(plugin::Registry& registry) {
  registry.Add({
      .type = plugin::kMetadata,
      .id = "bolt",
      .requires_types = {plugin::kContent, plugin::kSnapshot},
      .config_defaults = "content_sharing_policy = \"shared\"\n",
      .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
        if (auto policy = ic.Config()["content_sharing_policy"].value<std::string>();
            policy && *policy != "shared") {
          return InvalidArgument("content_sharing_policy " + *policy +
                                 " is not supported (berth shares content across namespaces)");
        }
        BERTH_ASSIGN_OR_RETURN(auto* content, ic.GetSingle<content::Store>(plugin::kContent));
        std::string dir = ic.Root() + "/meta.lmdb";
        std::map<std::string, snapshots::Snapshotter*> snapshotters;
        for (const auto& [id, sn] :
             ic.Plugins().GetAll<snapshots::Snapshotter>(plugin::kSnapshot)) {
          snapshotters.emplace(id, sn);
        }
        BERTH_ASSIGN_OR_RETURN(auto db, Db::Open(dir, content, std::move(snapshotters)));
        ic.Exports()["path"] = dir;
        ic.Exports()["policy"] = "shared";
        return plugin::Instance::Of<Db>(std::shared_ptr<Db>(std::move(db)));
      },
  });
  registry.Add({
      .type = plugin::kGc,
      .id = "scheduler",
      .requires_types = {plugin::kMetadata},
      .config_defaults = GcSchedulerConfig::DefaultToml(),
      .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
        BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<Db>(plugin::kMetadata));
        BERTH_ASSIGN_OR_RETURN(auto config, GcSchedulerConfig::FromToml(ic.Config()));
        auto scheduler = std::make_shared<GcScheduler>(*db, config);
        db->SetMutationCallback([s = scheduler.get()](bool dirty) { s->OnMutation(dirty); });
        return plugin::Instance::Of<GcScheduler>(std::move(scheduler));
      },
  });
}

}  // namespace berth::metadata
