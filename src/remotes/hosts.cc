#include "remotes/hosts.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"

namespace berth::remotes {
namespace {

std::string AbsPath(const std::string& base, std::string_view p) {
  if (!p.empty() && p.front() == '/') return std::string(p);
  return (std::filesystem::path(base) / std::string(p)).lexically_normal().string();
}

// Strings of a node that is a string or an array of strings.
Result<std::vector<std::string>> StringOrList(const toml::node& n, std::string_view what) {
  std::vector<std::string> out;
  if (auto s = n.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  if (const toml::array* arr = n.as_array()) {
    for (const toml::node& e : *arr) {
      auto s = e.value<std::string>();
      if (!s)
        return InvalidArgument(fmt::format("hosts.toml: {}: list entries must be strings", what));
      out.push_back(*s);
    }
    return out;
  }
  return InvalidArgument(fmt::format("hosts.toml: invalid type for \"{}\"", what));
}

// Applies one host table (or the top level) to `h`. `server` is the host URL ("" = default).
Result<RegistryHost> ParseHostConfig(std::string_view server, const std::string& base_dir,
                                     const toml::table& t) {
  RegistryHost h;
  h.scheme.clear();
  bool override_path = false;
  if (const toml::node* n = t.get("override_path")) {
    auto b = n->value<bool>();
    if (!b) return InvalidArgument("hosts.toml: \"override_path\" must be a boolean");
    override_path = *b;
  }
  if (!server.empty()) {
    std::string url(server);
    if (!url.starts_with("http")) url = "https://" + url;
    size_t sep = url.find("://");
    if (sep == std::string::npos) {
      return InvalidArgument(fmt::format("hosts.toml: unable to parse server \"{}\"", server));
    }
    h.scheme = url.substr(0, sep);
    if (h.scheme != "http" && h.scheme != "https") {
      return InvalidArgument(fmt::format("hosts.toml: unsupported scheme in \"{}\"", server));
    }
    std::string rest = url.substr(sep + 3);
    size_t slash = rest.find('/');
    h.host = rest.substr(0, slash);
    if (h.host.empty()) {
      return InvalidArgument(fmt::format("hosts.toml: no host in server \"{}\"", server));
    }
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    if (!path.empty()) {
      path = std::filesystem::path(path).lexically_normal().string();
      while (path.size() > 1 && path.back() == '/') path.pop_back();
      if (!path.ends_with("/v2") && !override_path) path += "/v2";
    } else if (!override_path) {
      path = "/v2";
    }
    h.path = path;
  }
  if (const toml::node* n = t.get("skip_verify")) {
    auto b = n->value<bool>();
    if (!b) return InvalidArgument("hosts.toml: \"skip_verify\" must be a boolean");
    h.skip_verify = *b;
  }
  if (const toml::node* n = t.get("capabilities")) {
    BERTH_ASSIGN_OR_RETURN(auto caps, StringOrList(*n, "capabilities"));
    if (!caps.empty()) {
      h.capabilities = 0;
      for (std::string c : caps) {
        std::transform(c.begin(), c.end(), c.begin(), ::tolower);
        if (c == "pull") {
          h.capabilities |= kCapPull;
        } else if (c == "resolve") {
          h.capabilities |= kCapResolve;
        } else if (c == "push") {
          h.capabilities |= kCapPush;
        } else {
          return InvalidArgument(fmt::format("hosts.toml: unknown capability \"{}\"", c));
        }
      }
    }
  }
  if (const toml::node* n = t.get("ca")) {
    BERTH_ASSIGN_OR_RETURN(auto cas, StringOrList(*n, "ca"));
    for (const auto& c : cas) h.ca_files.push_back(AbsPath(base_dir, c));
  }
  if (const toml::node* n = t.get("client")) {
    if (auto s = n->value<std::string>()) {
      h.client_pairs.emplace_back(AbsPath(base_dir, *s), "");
    } else if (const toml::array* arr = n->as_array()) {
      for (const toml::node& e : *arr) {
        if (auto s = e.value<std::string>()) {
          h.client_pairs.emplace_back(AbsPath(base_dir, *s), "");
          continue;
        }
        const toml::array* pair = e.as_array();
        if (pair == nullptr) return InvalidArgument("hosts.toml: invalid type in \"client\"");
        BERTH_ASSIGN_OR_RETURN(auto v, StringOrList(e, "client"));
        if (v.size() != 2) return InvalidArgument("hosts.toml: invalid pair in \"client\"");
        h.client_pairs.emplace_back(AbsPath(base_dir, v[0]), AbsPath(base_dir, v[1]));
      }
    } else {
      return InvalidArgument("hosts.toml: invalid type for \"client\"");
    }
  }
  if (const toml::node* n = t.get("header")) {
    const toml::table* ht = n->as_table();
    if (ht == nullptr) return InvalidArgument("hosts.toml: \"header\" must be a table");
    for (const auto& [k, v] : *ht) {
      BERTH_ASSIGN_OR_RETURN(auto values, StringOrList(v, fmt::format("header {}", k.str())));
      for (auto& val : values) h.headers.emplace_back(std::string(k.str()), std::move(val));
    }
  }
  return h;
}

Result<std::vector<RegistryHost>> LoadCertFiles(const std::string& dir) {
  std::vector<RegistryHost> hosts(1);
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_directory()) names.push_back(e.path().filename().string());
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Unknown(fmt::format("read host directory {}: {}", dir, ec.message()));
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    if (n.ends_with(".crt")) hosts[0].ca_files.push_back(dir + "/" + n);
    if (n.ends_with(".cert")) {
      std::string key = dir + "/" + n.substr(0, n.size() - 5) + ".key";
      struct stat st {};
      hosts[0].client_pairs.emplace_back(dir + "/" + n, ::stat(key.c_str(), &st) == 0 ? key : "");
    }
  }
  return hosts;
}

bool IsLoopbackIp(std::string_view host) {
  std::string h(host);
  in_addr a4{};
  if (::inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

}  // namespace

bool IsLocalhost(std::string_view host) {
  // net.SplitHostPort: "[v6]:port" or "host:port" (a single colon).
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close != std::string_view::npos) host = host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || IsLoopbackIp(host);
}

std::string HostDirectoryName(std::string_view host) {
  size_t idx = host.rfind(':');
  if (idx != std::string_view::npos && idx > 0) {
    return fmt::format("{}_{}_", host.substr(0, idx), host.substr(idx + 1));
  }
  return std::string(host);
}

Result<std::string> FindHostDir(const std::string& root, std::string_view host) {
  std::vector<std::string> candidates;
  std::string ch = HostDirectoryName(host);
  if (ch != host) candidates.push_back(root + "/" + ch);
  candidates.push_back(root + "/" + std::string(host));
  candidates.push_back(root + "/_default");
  for (const auto& p : candidates) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) return p;
    if (errno != ENOENT && errno != ENOTDIR) return ErrnoError(errno, fmt::format("stat {}", p));
  }
  return std::string();
}

Result<std::vector<RegistryHost>> ParseHostsToml(const std::string& base_dir,
                                                 std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text, base_dir + "/hosts.toml");
  } catch (const toml::parse_error& e) {
    return InvalidArgument(
        fmt::format("failed to parse TOML {}/hosts.toml: {}", base_dir, e.description()));
  }
  std::vector<RegistryHost> hosts;
  if (const toml::node* hn = root.get("host")) {
    const toml::table* ht = hn->as_table();
    if (ht == nullptr) return InvalidArgument("hosts.toml: invalid `host` tree");
    // toml++ tables are sorted by key; containerd keeps file order (by line).
    std::vector<std::pair<std::string, const toml::table*>> entries;
    for (const auto& [k, v] : *ht) {
      const toml::table* t = v.as_table();
      if (t == nullptr) {
        return InvalidArgument(fmt::format("hosts.toml: host \"{}\" is not a table", k.str()));
      }
      entries.emplace_back(std::string(k.str()), t);
    }
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.second->source().begin.line < b.second->source().begin.line;
    });
    for (const auto& [name, t] : entries) {
      BERTH_ASSIGN_OR_RETURN(auto h, ParseHostConfig(name, base_dir, *t));
      hosts.push_back(std::move(h));
    }
  }
  std::string server;
  if (const toml::node* n = root.get("server")) {
    auto s = n->value<std::string>();
    if (!s) return InvalidArgument("hosts.toml: \"server\" must be a string");
    server = *s;
  }
  BERTH_ASSIGN_OR_RETURN(auto top, ParseHostConfig(server, base_dir, root));
  hosts.push_back(std::move(top));
  return hosts;
}

Result<std::vector<RegistryHost>> LoadHostDir(const std::string& dir) {
  auto text = fs::ReadFile(dir + "/hosts.toml");
  if (!text) {
    if (!text.error().Is(Errc::kNotFound)) return std::move(text).error();
    return LoadCertFiles(dir);
  }
  if (text->empty()) return LoadCertFiles(dir);
  auto hosts = ParseHostsToml(dir, *text);
  if (!hosts) {
    log::L().WithError(hosts.error()).Error("failed to decode hosts.toml");
    return LoadCertFiles(dir);
  }
  return hosts;
}

Result<std::vector<RegistryHost>> ConfigureHosts(const HostOptions& options,
                                                 std::string_view host) {
  std::vector<RegistryHost> hosts;
  if (!options.hosts_dir.empty()) {
    BERTH_ASSIGN_OR_RETURN(std::string dir, FindHostDir(options.hosts_dir, host));
    if (!dir.empty()) {
      BERTH_ASSIGN_OR_RETURN(hosts, LoadHostDir(dir));
    }
  }
  if (hosts.empty()) hosts.resize(1);
  RegistryHost& last = hosts.back();
  if (last.host.empty()) {
    if (host == "docker.io") {
      last.scheme = "https";
      last.host = "registry-1.docker.io";
    } else if (IsLocalhost(host)) {
      last.host = host;
      if (options.default_scheme.empty() || options.default_scheme == "http") {
        last.scheme = "http";
        last.skip_verify = true;  // as containerd: no verification for localhost
      } else {
        last.scheme = options.default_scheme;
      }
    } else {
      last.host = host;
      last.scheme = options.default_scheme.empty() ? "https" : options.default_scheme;
    }
    last.path = "/v2";
    last.capabilities = kCapAll;
  }
  return hosts;
}

}  // namespace berth::remotes
