#include "remotes/auth.h"

#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

namespace berth::remotes {
namespace {

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::vector<Challenge> ParseWwwAuthenticate(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t s = i;
    while (i < h.size() && IsTokenChar(h[i])) ++i;
    return h.substr(s, i - s);
  };
  while (i < h.size()) {
    skip_ws();
    while (i < h.size() && (h[i] == ',' || h[i] == ' ')) ++i;
    if (i >= h.size()) break;
    size_t start = i;
    std::string_view t = token();
    if (t.empty()) {  // junk: skip to the next comma
      while (i < h.size() && h[i] != ',') ++i;
      continue;
    }
    skip_ws();
    if (i < h.size() && h[i] == '=' && !out.empty()) {
      // A parameter of the current challenge.
      ++i;
      skip_ws();
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        if (i < h.size()) ++i;  // closing quote
      } else {                  // unquoted: up to the next comma or blank
        size_t s = i;
        while (i < h.size() && h[i] != ',' && h[i] != ' ' && h[i] != '\t') ++i;
        value = h.substr(s, i - s);
      }
      out.back().params[Lower(t)] = std::move(value);
      skip_ws();
      if (i < h.size() && h[i] == ',') ++i;
      continue;
    }
    if (i < h.size() && h[i] == '=') {  // a parameter before any scheme: skip it
      i = start;
      while (i < h.size() && h[i] != ',') ++i;
      continue;
    }
    out.push_back(Challenge{.scheme = Lower(t), .params = {}});
  }
  return out;
}

std::string BasicAuthorization(std::string_view user, std::string_view secret) {
  return "Basic " + Base64Encode(fmt::format("{}:{}", user, secret));
}

Result<std::string> ParseTokenResponse(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("token response is not a JSON object");
  }
  for (const char* key : {"token", "access_token"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  return InvalidArgument("token response has no \"token\" or \"access_token\"");
}

std::string QueryEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::string TokenUrl(std::string_view realm, std::string_view service,
                     const std::vector<std::string>& scopes) {
  std::string url(realm);
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (!service.empty()) {
    url += sep;
    url += "service=" + QueryEscape(service);
    sep = '&';
  }
  for (const auto& s : scopes) {
    url += sep;
    url += "scope=" + QueryEscape(s);
    sep = '&';
  }
  return url;
}

}  // namespace berth::remotes
