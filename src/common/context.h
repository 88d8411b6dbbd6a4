#pragma once
// What travels with a request below the service edge: namespace, lease. Comes first in every
// domain call; nothing thread-local.
#include <string>

namespace berth {

struct Context {
  std::string ns;     // containerd-namespace ("" when the request had none)
  std::string lease;  // containerd-lease ("" = none)
};

}  // namespace berth
