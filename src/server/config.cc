#include "server/config.h"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::server {
namespace {

template <class T>
Status ReadScalar(const toml::table& t, std::string_view key, T& out, std::string_view where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Ok();
  if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = n->value<std::string>()) {
      out = *v;
      return Ok();
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    if (const auto* b = n->as_boolean()) {  // value<bool>() would take an integer too
      out = b->get();
      return Ok();
    }
  } else {
    // Integers only: toml++'s float-to-integer conversion is undefined for floats out of range.
    if (const auto* i = n->as_integer()) {
      out = static_cast<T>(i->get());
      return Ok();
    }
  }
  return InvalidArgument(fmt::format("config {}: key {:?} has the wrong type", where, key));
}

Status ReadStrings(const toml::table& t, std::string_view key, std::vector<std::string>& out,
                   std::string_view where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Ok();
  const toml::array* arr = n->as_array();
  if (arr == nullptr) {
    return InvalidArgument(fmt::format("config {}: {:?} must be a list of strings", where, key));
  }
  out.clear();
  for (const auto& e : *arr) {
    auto v = e.value<std::string>();
    if (!v) {
      return InvalidArgument(fmt::format("config {}: {:?} must be a list of strings", where, key));
    }
    out.push_back(*v);
  }
  return Ok();
}

}  // namespace

Result<Config> Config::FromToml(const toml::table& t) {
  Config c;
  static const std::vector<std::string_view> kKnown = {
      "version", "root",          "state",    "temp",    "oom_score",        "grpc",
      "ttrpc",   "debug",         "metrics",  "cgroup",  "disabled_plugins", "required_plugins",
      "plugins", "proxy_plugins", "timeouts", "imports", "plugin_dir",       "stream_processors"};
  for (const auto& [k, v] : t) {
    if (std::find(kKnown.begin(), kKnown.end(), k.str()) == kKnown.end()) {
      return InvalidArgument(fmt::format("config: unknown key {:?}", k.str()));
    }
  }
  BERTH_TRY(ReadScalar(t, "version", c.version, "top level"));
  if (c.version != 2) {
    return InvalidArgument(
        fmt::format("config: version {} is not supported (berth reads version = 2)", c.version));
  }
  BERTH_TRY(ReadScalar(t, "root", c.root, "top level"));
  BERTH_TRY(ReadScalar(t, "state", c.state, "top level"));
  BERTH_TRY(ReadScalar(t, "temp", c.temp, "top level"));
  BERTH_TRY(ReadScalar(t, "oom_score", c.oom_score, "top level"));
  BERTH_TRY(ReadStrings(t, "disabled_plugins", c.disabled_plugins, "top level"));
  BERTH_TRY(ReadStrings(t, "required_plugins", c.required_plugins, "top level"));
  if (const auto* g = t["grpc"].as_table()) {
    BERTH_TRY(ReadScalar(*g, "address", c.grpc.address, "[grpc]"));
    BERTH_TRY(ReadScalar(*g, "uid", c.grpc.uid, "[grpc]"));
    BERTH_TRY(ReadScalar(*g, "gid", c.grpc.gid, "[grpc]"));
    BERTH_TRY(ReadScalar(*g, "max_recv_message_size", c.grpc.max_recv_message_size, "[grpc]"));
    BERTH_TRY(ReadScalar(*g, "max_send_message_size", c.grpc.max_send_message_size, "[grpc]"));
    BERTH_TRY(ReadScalar(*g, "h2_guard", c.grpc.h2_guard, "[grpc]"));
  }
  if (const auto* g = t["ttrpc"].as_table()) {
    BERTH_TRY(ReadScalar(*g, "address", c.ttrpc.address, "[ttrpc]"));
    BERTH_TRY(ReadScalar(*g, "uid", c.ttrpc.uid, "[ttrpc]"));
    BERTH_TRY(ReadScalar(*g, "gid", c.ttrpc.gid, "[ttrpc]"));
  }
  if (const auto* d = t["debug"].as_table()) {
    BERTH_TRY(ReadScalar(*d, "level", c.debug.level, "[debug]"));
    BERTH_TRY(ReadScalar(*d, "format", c.debug.format, "[debug]"));
  }
  if (const auto* p = t["plugins"].as_table()) {
    for (const auto& [k, v] : *p) {
      const auto* pt = v.as_table();
      if (pt == nullptr) {
        return InvalidArgument(fmt::format("config: [plugins.{:?}] must be a table", k.str()));
      }
      c.plugins.emplace(std::string(k.str()), *pt);
    }
  }
  if (const auto* p = t["proxy_plugins"].as_table()) {
    for (const auto& [k, v] : *p) {
      const auto* pt = v.as_table();
      if (pt == nullptr) {
        return InvalidArgument(fmt::format("config: [proxy_plugins.{}] must be a table", k.str()));
      }
      ProxyPlugin pp;
      std::string where = fmt::format("[proxy_plugins.{}]", k.str());
      BERTH_TRY(ReadScalar(*pt, "type", pp.type, where));
      BERTH_TRY(ReadScalar(*pt, "address", pp.address, where));
      if (pp.type != "snapshot" && pp.type != "content") {
        return InvalidArgument(
            fmt::format("config {}: type {:?} is not \"snapshot\" or \"content\"", where, pp.type));
      }
      c.proxy_plugins.emplace(std::string(k.str()), pp);
    }
  }
  if (const auto* p = t["timeouts"].as_table()) {
    for (const auto& [k, v] : *p) {
      if (auto s = v.value<std::string>()) c.timeouts[std::string(k.str())] = *s;
    }
  }
  return c;
}

Result<Config> Config::Parse(std::string_view text, std::string_view source) {
  try {
    toml::table t = toml::parse(text, source);
    return FromToml(t);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return InvalidArgument(fmt::format("parse config {} at line {}, column {}: {}", source, b.line,
                                       b.column, e.description()));
  }
}

Result<Config> Config::Load(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  auto c = Parse(text, path);
  if (!c) {
    return std::move(c).error().Wrap("load config " + path);
  }
  return c;
}

toml::table Config::PluginTable(const std::string& uri) const {
  auto it = plugins.find(uri);
  return it == plugins.end() ? toml::table{} : it->second;
}

std::string Config::TtrpcAddress() const {
  return ttrpc.address.empty() ? grpc.address + ".ttrpc" : ttrpc.address;
}

std::string Config::ToToml() const {
  toml::table t;
  t.insert("version", version);
  t.insert("root", root);
  t.insert("state", state);
  t.insert("temp", temp);
  t.insert("oom_score", oom_score);
  toml::array dp;
  for (const auto& p : disabled_plugins) dp.push_back(p);
  t.insert("disabled_plugins", dp);
  toml::array rp;
  for (const auto& p : required_plugins) rp.push_back(p);
  t.insert("required_plugins", rp);
  t.insert("grpc", toml::table{{"address", grpc.address},
                               {"uid", grpc.uid},
                               {"gid", grpc.gid},
                               {"max_recv_message_size", grpc.max_recv_message_size},
                               {"max_send_message_size", grpc.max_send_message_size},
                               {"h2_guard", grpc.h2_guard}});
  t.insert("ttrpc",
           toml::table{{"address", ttrpc.address}, {"uid", ttrpc.uid}, {"gid", ttrpc.gid}});
  t.insert("debug", toml::table{{"level", debug.level}, {"format", debug.format}});
  toml::table timeouts_table;
  for (const auto& [k, v] : timeouts) timeouts_table.insert(k, v);
  t.insert("timeouts", timeouts_table);
  toml::table plugins_table;
  for (const auto& [k, v] : plugins) plugins_table.insert(k, v);
  t.insert("plugins", plugins_table);
  if (!proxy_plugins.empty()) {
    toml::table pp;
    for (const auto& [k, v] : proxy_plugins) {
      pp.insert(k, toml::table{{"type", v.type}, {"address", v.address}});
    }
    t.insert("proxy_plugins", pp);
  }
  std::ostringstream out;
  out << t << "\n";
  return out.str();
}

}  // namespace berth::server
