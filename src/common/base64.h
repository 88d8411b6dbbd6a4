#pragma once
// Standard base64 (RFC 4648 §4, alphabet A-Z a-z 0-9 + /), as Go's base64.StdEncoding writes it:
// registry Basic credentials, CRI auth configs, WebSocket accept keys and the
// base64.channel.k8s.io streaming subprotocols.
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth {

// Padded output ("f" -> "Zg==").
std::string Base64Encode(std::string_view data);
// Standard base64 with or without padding (decoding stops at the first '='); InvalidArgument for
// other characters.
Result<std::string> Base64Decode(std::string_view data);

}  // namespace berth
