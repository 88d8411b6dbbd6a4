#include "cri/streaming/route.h"

#include <fmt/format.h>

#include <charconv>

namespace berth::cri::streaming {

std::variant<Route, http::Refusal> ParseRoute(std::string_view method, std::string_view path) {
  static constexpr struct {
    std::string_view prefix;
    RouteKind kind;
  } kRoutes[] = {
      {"/exec/", RouteKind::kExec},
      {"/attach/", RouteKind::kAttach},
      {"/portforward/", RouteKind::kPortForward},
  };
  for (const auto& r : kRoutes) {
    if (!path.starts_with(r.prefix)) continue;
    std::string_view token = path.substr(r.prefix.size());
    if (token.empty() || token.find('/') != std::string_view::npos) break;
    if (method != "GET" && method != "POST") {
      return http::Refusal{.status = 405, .text = "405: Method Not Allowed", .headers = {}};
    }
    return Route{.kind = r.kind, .token = std::string(token)};
  }
  return http::Refusal{.status = 404, .text = "404 page not found", .headers = {}};
}

Result<std::vector<uint16_t>> ParsePortForwardPorts(const http::Request& request) {
  std::vector<std::string> values = request.QueryValues("port");
  if (values.empty()) return InvalidArgument("query parameter \"port\" is required");
  std::vector<uint16_t> ports;
  for (const std::string& value : values) {
    if (value.empty()) return InvalidArgument("query parameter \"port\" cannot be empty");
    std::string_view rest = value;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view p = rest.substr(0, comma);
      uint32_t port = 0;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (p.empty() || ec != std::errc() || end != p.data() + p.size() || port > 65535) {
        return InvalidArgument(fmt::format("unable to parse {:?} as a port", value));
      }
      if (port < 1) return InvalidArgument(fmt::format("port {:?} must be > 0", value));
      ports.push_back(static_cast<uint16_t>(port));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return ports;
}

}  // namespace berth::cri::streaming
