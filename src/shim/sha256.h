#pragma once
// SHA-256 of a short string, as lowercase hex. The shim only hashes socket names; a local
// implementation keeps libcrypto (over half a megabyte of mapped pages) out of every shim.
#include <string>
#include <string_view>

namespace berth::shim {

std::string Sha256Hex(std::string_view data);

}  // namespace berth::shim
