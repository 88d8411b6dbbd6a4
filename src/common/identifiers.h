#pragma once
// containerd's identifier rule, used for namespaces, container, task and exec ids and event topic
// components: ^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$, 1 to 76 characters.
#include <string_view>

#include "common/errdefs.h"

namespace berth::identifiers {

inline constexpr size_t kMaxLength = 76;

// InvalidArgument naming the identifier and the rule it breaks.
Status Validate(std::string_view id);

}  // namespace berth::identifiers
