#pragma once
// An OCI content descriptor (containerd.types.Descriptor on the wire).
#include <cstdint>
#include <map>
#include <string>

#include "common/digest.h"

namespace berth {

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

}  // namespace berth
