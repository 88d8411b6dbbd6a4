#pragma once
#include "plugin/plugin.h"

namespace berth::metadata {
// io.containerd.metadata.v1.bolt: the LMDB metadata store over the content backend
// (containerd's id, so the same config key and `ctr plugins ls` line), and
// io.containerd.gc.v1.scheduler: when garbage collection runs.
void RegisterPlugins(plugin::Registry& registry);
}  // namespace berth::metadata
