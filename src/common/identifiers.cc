#include "common/identifiers.h"

#include <fmt/format.h>

namespace berth::identifiers {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsSeparator(char c) { return c == '.' || c == '_' || c == '-'; }

}  // namespace

Status Validate(std::string_view id) {
  if (id.empty()) {
    return InvalidArgument("identifier must not be empty");
  }
  if (id.size() > kMaxLength) {
    // Not echoed whole: metadata may carry megabytes, and the answer's own metadata would then
    // exceed what clients take (gRPC's default is 8 KiB).
    return InvalidArgument(fmt::format(
        "identifier {:?}... ({} characters) greater than maximum length ({} characters)",
        id.substr(0, kMaxLength), id.size(), kMaxLength));
  }
  // Components of alphanumerics separated by exactly one of [._-].
  bool prev_alnum = false;
  for (char c : id) {
    if (IsAlnum(c)) {
      prev_alnum = true;
    } else if (IsSeparator(c) && prev_alnum) {
      prev_alnum = false;
    } else {
      prev_alnum = false;
      return InvalidArgument(
          fmt::format("identifier {:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$", id));
    }
  }
  if (!prev_alnum) {
    return InvalidArgument(
        fmt::format("identifier {:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$", id));
  }
  return Ok();
}

}  // namespace berth::identifiers
