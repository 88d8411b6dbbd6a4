#pragma once
// Registry host configuration: containerd 1.6's remotes/docker/config (ConfigureHosts,
// hosts.toml).
//
// Lookup for host "h[:port]" under a hosts dir (HostDirFromRoot): "<dir>/h_port_/" (only when
// there is a port), "<dir>/h:port/" (or "<dir>/h/"), "<dir>/_default/"; the first that exists
// wins, and its "hosts.toml" is read. The file:
//   server = "https://registry.example"        # the upstream, tried last
//   capabilities = [...]; ca; client; skip_verify; header; override_path  # for `server`
//   [host."https://mirror.example:5000"]       # tried first, in file order
//     capabilities = ["pull", "resolve"]       # pull | resolve | push (default: all three)
//     ca = "ca.crt"                            # string or list; relative to the directory
//     client = [["c.cert", "c.key"]]           # string | list of strings | list of pairs
//     skip_verify = false
//     override_path = false                    # true: the URL path is the API root
//     [host."https://mirror.example:5000".header]
//       x-custom = "v"                         # string or list of strings
// A host without a scheme gets "https://"; the path gets "/v2" appended unless it ends in
// "/v2" or override_path is set. No "server" (or no file): the last entry is the default host.
// An empty or missing hosts.toml, or one that does not parse, falls back to the docker
// certs.d layout in the directory: "*.crt" are CAs, "*.cert" client certificates with a
// "*.key" of the same name if present.
//
// Default host (no server configured): docker.io -> https://registry-1.docker.io/v2;
// localhost, 127.0.0.0/8 and ::1 (with any port) -> http, with TLS verification off, unless
// the default scheme is "https"; others -> the default scheme ("https" unless plain_http).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/errdefs.h"

namespace berth::remotes {

enum HostCapability : uint32_t {
  kCapPull = 1,
  kCapResolve = 2,
  kCapPush = 4,
  kCapAll = kCapPull | kCapResolve | kCapPush,
};

struct RegistryHost {
  std::string scheme;  // "http" | "https"
  std::string host;    // "host[:port]"
  std::string path;    // API root, normally "/v2"
  uint32_t capabilities = kCapAll;
  std::vector<std::string> ca_files;  // absolute paths
  // (certificate, key) absolute paths; key "" = the key is in the certificate file.
  std::vector<std::pair<std::string, std::string>> client_pairs;
  std::optional<bool> skip_verify;                           // unset: the resolver's default
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers

  bool Can(HostCapability c) const { return (capabilities & c) != 0; }
  // "scheme://host/path" (no trailing slash).
  std::string BaseUrl() const { return scheme + "://" + host + path; }
};

struct HostOptions {
  std::string hosts_dir;       // "" = defaults only
  std::string default_scheme;  // "" (https, http for localhost) | "http" | "https"
};

// containerd's docker.IsLocalhost: "localhost" or a loopback IP, with or without a port.
bool IsLocalhost(std::string_view host);
// "host:port" -> "host_port_"; without a port the host unchanged.
std::string HostDirectoryName(std::string_view host);
// The directory for `host` under `root` (see the lookup above); "" if none exists.
Result<std::string> FindHostDir(const std::string& root, std::string_view host);
// Parses hosts.toml text; relative paths are resolved against `base_dir`. The last element is
// the `server` entry (host "" when no server is set). InvalidArgument on bad TOML or values.
Result<std::vector<RegistryHost>> ParseHostsToml(const std::string& base_dir,
                                                 std::string_view text);
// Reads <dir>/hosts.toml, falling back to the certs.d layout (see above).
Result<std::vector<RegistryHost>> LoadHostDir(const std::string& dir);
// The hosts to try for `host`, in order (mirrors first, the server last).
Result<std::vector<RegistryHost>> ConfigureHosts(const HostOptions& options, std::string_view host);

}  // namespace berth::remotes
