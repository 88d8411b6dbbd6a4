#pragma once
#include <map>
#include <string>

#include "plugin/plugin.h"
#include "server/config.h"

namespace berth::server {
// The one list of built-in plugins: calls every Register*() function.
void RegisterBuiltins(plugin::Registry& registry);
// The config's [proxy_plugins]: "snapshot" ones become io.containerd.snapshotter.v1.<name>
// (snapshots/proxy); "content" ones are not supported yet and are skipped with a warning.
// AlreadyExists when a name clashes with a built-in snapshotter.
Status RegisterProxyPlugins(plugin::Registry& registry,
                            const std::map<std::string, ProxyPlugin>& proxy_plugins);
}  // namespace berth::server
