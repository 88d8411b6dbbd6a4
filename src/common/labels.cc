#include "common/labels.h"

#include <fmt/format.h>

namespace berth::labels {

Status Validate(const std::string& key, const std::string& value) {
  if (key.size() + value.size() > kMaxSize) {
    std::string shown = key.size() > 10 ? key.substr(0, 10) : key;
    return InvalidArgument(fmt::format(
        "label key and value greater than maximum size ({} bytes), key: {}", kMaxSize, shown));
  }
  return Ok();
}

Status ValidateAll(const Labels& labels) {
  for (const auto& [k, v] : labels) {
    BERTH_TRY(Validate(k, v));
  }
  return Ok();
}

}  // namespace berth::labels
