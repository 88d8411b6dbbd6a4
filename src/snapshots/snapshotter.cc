#include "snapshots/snapshotter.h"

#include <cctype>

namespace berth::snapshots {

std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kView:
      return "View";
    case Kind::kActive:
      return "Active";
    case Kind::kCommitted:
      return "Committed";
    case Kind::kUnknown:
      break;
  }
  return "Unknown";
}

Kind ParseKind(std::string_view s) {
  auto equals = [s](std::string_view name) {
    if (s.size() != name.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(s[i])) !=
          std::tolower(static_cast<unsigned char>(name[i]))) {
        return false;
      }
    }
    return true;
  };
  if (equals("view")) return Kind::kView;
  if (equals("active")) return Kind::kActive;
  if (equals("committed")) return Kind::kCommitted;
  return Kind::kUnknown;
}

}  // namespace berth::snapshots
