#pragma once
// Pieces shared by the ttrpc server and client (not part of the public API).
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc::internal {

// Header + body as one buffer, written as one unit. `body` must fit kMaxMessageLength.
std::string MakeFrame(uint32_t stream_id, MessageType type, std::string_view body);

// Serialized Response{status{code, message}, payload}.
std::string MakeResponse(int grpc_code, std::string_view message, std::string_view payload);

// "unix:///path", "/path" (socket file) or "@name" (abstract) as a sockaddr; InvalidArgument when
// empty or longer than sun_path.
struct UnixAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
};
Result<UnixAddress> ParseAddress(std::string_view address);

}  // namespace berth::ttrpc::internal
