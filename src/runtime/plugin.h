#pragma once
#include "plugin/plugin.h"

namespace berth::runtime {

// io.containerd.runtime.v2 "task": a runtime::TaskManager over the state/root dirs of the
// plugin, the event exchange (events of dead shims) and the container store (runtime names of
// bundles without shim-binary-path). Config: runtime/config.h.
void RegisterPlugins(plugin::Registry& registry);

}  // namespace berth::runtime
