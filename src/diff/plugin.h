#pragma once
#include "plugin/plugin.h"

namespace berth::diff {
// io.containerd.differ.v1.walking: registers Instance::Of<diff::Differ> whose applier and
// comparer are one WalkingDiff. Requires io.containerd.metadata.v1 (as containerd). Its content
// store is the namespaced one, found at first use as the io.containerd.service.v1 instance of
// type content::Store (diff/ cannot depend on metadata/): the daemon must register the
// metadata content store under that type. Temporary mounts live in <root>/tmpmounts; leftovers
// of a crash are unmounted at init.
void RegisterPlugins(plugin::Registry& registry);
}  // namespace berth::diff
