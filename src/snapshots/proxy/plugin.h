#pragma once
// Proxy snapshotter plugins from the config's [proxy_plugins.<name>] tables of type "snapshot"
// (containerd's services/server/server.go): each becomes io.containerd.snapshotter.v1.<name>, a
// proxy::Snapshotter named <name> on the configured socket, exporting `address`.
#include <string>
#include <utility>
#include <vector>

#include "plugin/plugin.h"

namespace berth::snapshots::proxy {

struct PluginSpec {
  std::string name;
  std::string address;
};

// AlreadyExists (and nothing registered) when a name is taken by another snapshotter plugin.
Status RegisterPlugins(plugin::Registry& registry, const std::vector<PluginSpec>& proxies);

}  // namespace berth::snapshots::proxy
