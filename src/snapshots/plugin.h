#pragma once
#include "plugin/plugin.h"

namespace berth::snapshots {

// io.containerd.snapshotter.v1: overlayfs (the default), native, btrfs (skipped unless its root is
// on btrfs). Each lives under its plugin root <root>/io.containerd.snapshotter.v1.<id> unless the
// plugin's config says `root_path`; overlayfs also reads `upperdir_label`. The instance is a
// snapshots::Snapshotter.
void RegisterPlugins(plugin::Registry& registry);

}  // namespace berth::snapshots
