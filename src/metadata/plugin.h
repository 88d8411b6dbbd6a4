#pragma once
#include "plugin/plugin.h"

namespace berth::metadata {
// io.containerd.metadata.v1.bolt: the LMDB metadata store (containerd's id, so the same config
// key and `ctr plugins ls` line).
void RegisterPlugins(plugin::Registry& registry);
}  // namespace berth::metadata
