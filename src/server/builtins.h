#pragma once
#include "plugin/plugin.h"

namespace berth::server {
// The one list of built-in plugins: calls every Register*() function.
void RegisterBuiltins(plugin::Registry& registry);
}  // namespace berth::server
