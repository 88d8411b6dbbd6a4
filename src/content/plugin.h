#pragma once
#include "plugin/plugin.h"

namespace berth::content {
// io.containerd.content.v1.content: the local content store under <root>/<type>.<id>.
void RegisterPlugins(plugin::Registry& registry);
}  // namespace berth::content
