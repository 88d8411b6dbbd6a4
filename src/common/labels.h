#pragma once
// Labels: string maps on every object. containerd's limit: len(key) + len(value) <= 4096.
#include <map>
#include <string>

#include "common/errdefs.h"

namespace berth {

using Labels = std::map<std::string, std::string>;

namespace labels {

inline constexpr size_t kMaxSize = 4096;
Status Validate(const std::string& key, const std::string& value);
Status ValidateAll(const Labels& labels);

}  // namespace labels
}  // namespace berth
