#include "common/json_depth.h"

#include <fmt/format.h>

#include <algorithm>

namespace berth {

size_t JsonNestingDepth(std::string_view text) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        deepest = std::max(deepest, ++depth);
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

Status CheckJsonDepth(std::string_view text, std::string_view what, size_t max_depth) {
  if (JsonNestingDepth(text) > max_depth) {
    return InvalidArgument(
        fmt::format("{}: exceeded max depth ({} levels of nesting)", what, max_depth));
  }
  return Ok();
}

}  // namespace berth
