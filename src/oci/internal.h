#pragma once
// Helpers shared by the spec option files (not part of the oci API).
#include <string>
#include <string_view>
#include <vector>

#include "oci/spec.h"

namespace berth::oci::internal {

using json = nlohmann::json;

// The object at `key` of the spec, created empty if missing (Go's setProcess/setLinux/...).
inline json& Process(Spec& s) {
  if (!s.contains("process") || !s["process"].is_object()) s["process"] = json::object();
  return s["process"];
}

inline json& Linux(Spec& s) {
  if (!s.contains("linux") || !s["linux"].is_object()) s["linux"] = json::object();
  return s["linux"];
}

inline json& Resources(Spec& s) {
  json& linux = Linux(s);
  if (!linux.contains("resources") || !linux["resources"].is_object()) {
    linux["resources"] = json::object();
  }
  return linux["resources"];
}

inline json& Cpu(Spec& s) {
  json& r = Resources(s);
  if (!r.contains("cpu") || !r["cpu"].is_object()) r["cpu"] = json::object();
  return r["cpu"];
}

inline json& Capabilities(Spec& s) {
  json& p = Process(s);
  if (!p.contains("capabilities") || !p["capabilities"].is_object()) {
    p["capabilities"] = json::object();
  }
  return p["capabilities"];
}

inline std::vector<std::string> StringList(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

inline std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = text.find(sep, start);
    out.emplace_back(text.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

}  // namespace berth::oci::internal
