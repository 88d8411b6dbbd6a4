#pragma once
#include "plugin/plugin.h"

namespace berth::events {

// io.containerd.event.v1 "exchange": an events::Exchange instance (as Publisher: ask for
// Exchange and use it as one).
void RegisterPlugins(plugin::Registry& registry);

}  // namespace berth::events
