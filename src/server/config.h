#pragma once
// berthd's configuration: TOML with containerd's key names (config version 2).
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "common/errdefs.h"

namespace berth::server {

inline constexpr const char* kDefaultRoot = "/var/lib/berth";
inline constexpr const char* kDefaultState = "/run/berth";
inline constexpr const char* kDefaultAddress = "/run/berth/berth.sock";
inline constexpr const char* kDefaultConfigPath = "/etc/berth/config.toml";

struct GrpcConfig {
  std::string address = kDefaultAddress;
  int uid = 0;
  int gid = 0;
  int max_recv_message_size = 16 << 20;
  int max_send_message_size = 16 << 20;
  // berth's own key: relay clients through the HTTP/2 guard (server/h2_guard.h), which bounds
  // what hostile clients cost (rapid reset) at ~25 us per call. false: gRPC listens itself.
  bool h2_guard = true;
};

struct TtrpcConfig {
  std::string address;  // "" = <grpc address>.ttrpc
  int uid = 0;
  int gid = 0;
};

struct DebugConfig {
  std::string level = "info";
  std::string format;
};

struct ProxyPlugin {
  std::string type;  // "snapshot" | "content"
  std::string address;
};

struct Config {
  int version = 2;
  std::string root = kDefaultRoot;
  std::string state = kDefaultState;
  std::string temp;
  int oom_score = 0;
  GrpcConfig grpc;
  TtrpcConfig ttrpc;
  DebugConfig debug;
  std::vector<std::string> disabled_plugins;
  std::vector<std::string> required_plugins;
  // Per-plugin tables, keyed by "<type>.<id>" (e.g. "io.containerd.gc.v1.scheduler").
  std::map<std::string, toml::table> plugins;
  std::map<std::string, ProxyPlugin> proxy_plugins;
  std::map<std::string, std::string> timeouts;

  // Parses a config document; unknown top-level keys are rejected with their name.
  static Result<Config> FromToml(const toml::table& table);
  static Result<Config> Parse(std::string_view text, std::string_view source = "config");
  static Result<Config> Load(const std::string& path);

  // The plugin's table, or an empty one.
  toml::table PluginTable(const std::string& uri) const;
  // The effective ttrpc address.
  std::string TtrpcAddress() const;
  // This config as TOML (with every plugin's table as given).
  std::string ToToml() const;
};

}  // namespace berth::server
