#pragma once
// How deeply a JSON document nests, found without parsing it: the guard in front of every
// parse of JSON that comes from outside (registry blobs, image configs). Go's encoding/json,
// which containerd parses them with, refuses documents nested deeper than 10000
// ("exceeded max depth"); a deeper document here would also make nlohmann's recursive dump and
// comparison overflow the stack.
#include <cstddef>
#include <string_view>

#include "common/errdefs.h"

namespace berth {

inline constexpr size_t kMaxJsonDepth = 10000;

// The deepest nesting of objects and arrays in `text` (brackets inside strings do not count);
// the text need not be valid JSON.
size_t JsonNestingDepth(std::string_view text);

// InvalidArgument `<what>: exceeded max depth` when `text` nests deeper than `max_depth`.
Status CheckJsonDepth(std::string_view text, std::string_view what,
                      size_t max_depth = kMaxJsonDepth);

}  // namespace berth
