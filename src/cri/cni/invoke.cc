#include "cri/cni/invoke.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

#include <fmt/format.h>

#include "common/fs.h"
#include "cri/cni/exec.h"
#include "cri/cni/result.h"

extern char** environ;  // NOLINT(readability-identifier-naming): POSIX

namespace berth::cri::cni::internal {
namespace {

using json = nlohmann::json;

constexpr std::string_view kCacheKind = "cniCacheV1";

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = ::EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(data.data()),
                            static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// libcni pkg/utils: [a-zA-Z0-9][a-zA-Z0-9_.\-]*
bool ValidName(std::string_view s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

// libcni's ValidateContainerID, ValidateNetworkName and ValidateInterfaceName (texts are those
// of types.Error: "<msg>; <details>").
Status ValidateAttachment(const std::string& network, const RuntimeConf& rt) {
  if (rt.container_id.empty()) return InvalidArgument("missing containerID");
  if (!ValidName(rt.container_id)) {
    return InvalidArgument(fmt::format("invalid characters in containerID; {}", rt.container_id));
  }
  if (network.empty()) return InvalidArgument("missing network name:");
  if (!ValidName(network)) {
    return InvalidArgument(fmt::format("invalid characters found in network name; {}", network));
  }
  const std::string& ifn = rt.ifname;
  if (ifn.empty()) return InvalidArgument("interface name is empty");
  if (ifn.size() > 15) {
    return InvalidArgument(
        "interface name is too long; interface name should be less than 16 characters");
  }
  if (ifn == "." || ifn == "..") return InvalidArgument("interface name is . or ..");
  for (char c : ifn) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) {
      return InvalidArgument("interface name contains / or : or whitespace characters");
    }
  }
  return Ok();
}

std::string Describe(const NetworkConfList& list, const json& plugin) {
  return fmt::format("type=\"{}\" name=\"{}\"", plugin.value("type", ""), list.name);
}

// Plugin failures are Unknown, as containerd's are on the wire (a NotFound class would add
// "not found" to the text, which Remove reads as "already gone"); a timeout keeps its class.
Errc Class(const Error& e) {
  return e.Is(Errc::kDeadlineExceeded) ? Errc::kDeadlineExceeded : Errc::kUnknown;
}

std::string Joined(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace

json BuildOneConfig(const NetworkConfList& list, const json& plugin, const json* prev_result,
                    const RuntimeConf& rt) {
  json conf = plugin;
  conf["name"] = list.name;
  conf["cniVersion"] = list.cni_version;
  if (prev_result != nullptr && !prev_result->is_null()) conf["prevResult"] = *prev_result;
  json rc = json::object();
  auto caps = plugin.find("capabilities");
  if (caps != plugin.end() && caps->is_object()) {
    for (const auto& [cap, supported] : caps->items()) {
      if (!supported.is_boolean() || !supported.get<bool>()) continue;
      auto arg = rt.capability_args.find(cap);
      if (arg != rt.capability_args.end()) rc[cap] = *arg;
    }
  }
  if (!rc.empty()) conf["runtimeConfig"] = std::move(rc);
  return conf;
}

std::string PluginErrorText(int status, const std::string& out, const std::string& err) {
  if (out.empty()) {
    if (err.empty()) {
      return fmt::format("netplugin failed with no error message: exit status {}", status);
    }
    return fmt::format("netplugin failed: {:?}", err);
  }
  json doc = json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return fmt::format("netplugin failed but error parsing its diagnostic message {:?}: {}", out,
                       doc.is_discarded() ? "invalid JSON" : "not a JSON object");
  }
  auto str = [&](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string text = str("msg");
  if (std::string details = str("details"); !details.empty()) text += "; " + details;
  return text;
}

std::string Invoker::CacheFile(const std::string& network, const RuntimeConf& rt) const {
  return fmt::format("{}/results/{}-{}-{}", cache_dir_, network, rt.container_id, rt.ifname);
}

Result<std::string> Invoker::FindInPath(const std::string& type) const {
  if (type.empty()) return InvalidArgument("no plugin name provided");
  if (type.find('/') != std::string::npos) {
    return InvalidArgument(fmt::format("invalid plugin name: {}", type));
  }
  if (bin_dirs_.empty()) return InvalidArgument("no paths provided");
  for (const auto& dir : bin_dirs_) {
    std::string path = dir + "/" + type;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return path;
  }
  return NotFound(
      fmt::format("failed to find plugin \"{}\" in path [{}]", type, Joined(bin_dirs_, " ")));
}

Result<std::string> Invoker::ExecPlugin(const std::string& path, const char* command,
                                        const std::string& stdin_conf,
                                        const RuntimeConf& rt) const {
  // The daemon's environment, then ours (libcni Args.AsEnv: later values win).
  static constexpr std::string_view kOurs[] = {
      "CNI_COMMAND=", "CNI_CONTAINERID=", "CNI_NETNS=", "CNI_ARGS=", "CNI_IFNAME=", "CNI_PATH="};
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    bool ours = false;
    for (auto prefix : kOurs) ours = ours || kv.starts_with(prefix);
    if (!ours) env.emplace_back(kv);
  }
  std::vector<std::string> args;
  args.reserve(rt.args.size());
  for (const auto& [k, v] : rt.args) args.push_back(k + "=" + v);
  env.push_back(fmt::format("CNI_COMMAND={}", command));
  env.push_back("CNI_CONTAINERID=" + rt.container_id);
  env.push_back("CNI_NETNS=" + rt.netns);
  env.push_back("CNI_ARGS=" + Joined(args, ";"));
  env.push_back("CNI_IFNAME=" + rt.ifname);
  env.push_back("CNI_PATH=" + Joined(bin_dirs_, ":"));

  auto run = Exec(path, env, stdin_conf, timeout_);
  if (!run) {
    if (run.error().Is(Errc::kDeadlineExceeded)) return std::move(run).error();
    return Unknown(
        fmt::format("netplugin failed with no error message: {}", run.error().ToString()));
  }
  if (run->status != 0) return Unknown(PluginErrorText(run->status, run->out, run->err));
  return std::move(run->out);
}

Result<json> Invoker::AddNetworkList(const NetworkConfList& list, const RuntimeConf& rt) const {
  json result;  // null until the first plugin answers
  for (const json& plugin : list.plugins) {
    auto added = [&]() -> Result<json> {
      BERTH_ASSIGN_OR_RETURN(std::string path, FindInPath(plugin.value("type", "")));
      BERTH_TRY(ValidateAttachment(list.name, rt));
      std::string conf = BuildOneConfig(list, plugin, &result, rt).dump();
      BERTH_ASSIGN_OR_RETURN(std::string out, ExecPlugin(path, "ADD", conf, rt));
      json doc = json::parse(out, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded()) {
        return Unknown(fmt::format("failed to unmarshal raw result: invalid JSON {:?}", out));
      }
      if (doc.is_null()) doc = json::object();
      if (!doc.is_object()) return Unknown("failed to unmarshal raw result: not a JSON object");
      // libcni fixupResultVersion: a result without a version is in the config's version (an
      // empty config version means 0.1.0).
      auto v = doc.find("cniVersion");
      if (v == doc.end() || !v->is_string() || v->get<std::string>().empty()) {
        doc["cniVersion"] = list.cni_version.empty() ? "0.1.0" : list.cni_version;
      }
      BERTH_TRY(ParseResult(doc));
      return doc;
    }();
    if (!added) {
      return Error(Class(added.error()), fmt::format("plugin {} failed (add): {}",
                                                     Describe(list, plugin), added.error().What()));
    }
    result = std::move(*added);
  }

  nlohmann::ordered_json cached;
  cached["kind"] = kCacheKind;
  cached["containerId"] = rt.container_id;
  cached["config"] = Base64(list.bytes);
  cached["ifName"] = rt.ifname;
  cached["networkName"] = list.name;
  if (!rt.args.empty()) {
    auto args = nlohmann::ordered_json::array();
    for (const auto& [k, v] : rt.args) args.push_back({k, v});
    cached["cniArgs"] = std::move(args);
  }
  if (!rt.capability_args.empty()) {
    cached["capabilityArgs"] = nlohmann::ordered_json::parse(rt.capability_args.dump());
  }
  cached["result"] = nlohmann::ordered_json::parse(result.dump());
  std::string file = CacheFile(list.name, rt);
  Status st = fs::MkdirAll(cache_dir_ + "/results", 0700);
  if (st) st = fs::ReplaceFile(file, cached.dump(), 0600);
  if (!st) {
    return Unknown(fmt::format("failed to set network \"{}\" cached result: {}", list.name,
                               st.error().ToString()));
  }
  return result;
}

Result<json> Invoker::CachedResult(const NetworkConfList& list, const RuntimeConf& rt) const {
  auto data = fs::ReadFile(CacheFile(list.name, rt));
  if (!data) return json();  // libcni: read errors mean no cached result
  json doc = json::parse(*data, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("cached result is not JSON");
  json result = doc;  // a legacy cache file is the bare result
  if (doc.is_object() && doc.value("kind", "") == kCacheKind) {
    auto it = doc.find("result");
    if (it == doc.end() || it->is_null()) return json();
    result = *it;
  }
  if (result.is_object() && result.value("cniVersion", "") == list.cni_version) return result;
  auto parsed = ParseResult(result);
  if (!parsed) return std::move(parsed).error();
  auto converted = ResultToJson(*parsed, list.cni_version);
  if (!converted) {
    return std::move(converted).error().Wrap(
        fmt::format("failed to convert cached result to config version \"{}\"", list.cni_version));
  }
  return converted;
}

Status Invoker::DelNetworkList(const NetworkConfList& list, const RuntimeConf& rt) const {
  json cached;
  // Cached results on DEL came with CNI 0.4.0. libcni fails on an empty version; berth treats it
  // as older than 0.4.0 (no prevResult), which is what the plugin will assume anyway.
  auto cmp = CompareVersions(list.cni_version.empty() ? "0.1.0" : list.cni_version, "0.4.0");
  if (!cmp) return std::move(cmp).error();
  if (*cmp >= 0) {
    auto c = CachedResult(list, rt);
    if (!c) {
      return Unknown(fmt::format("failed to get network \"{}\" cached result: {}", list.name,
                                 c.error().What()));
    }
    cached = std::move(*c);
  }
  for (auto it = list.plugins.rbegin(); it != list.plugins.rend(); ++it) {
    const json& plugin = *it;
    Status st = [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(std::string path, FindInPath(plugin.value("type", "")));
      std::string conf = BuildOneConfig(list, plugin, &cached, rt).dump();
      BERTH_TRY(ExecPlugin(path, "DEL", conf, rt));
      return Ok();
    }();
    if (!st) {
      return Error(Class(st.error()), fmt::format("plugin {} failed (delete): {}",
                                                  Describe(list, plugin), st.error().What()));
    }
  }
  std::string file = CacheFile(list.name, rt);
  ::unlink(file.c_str());
  return Ok();
}

}  // namespace berth::cri::cni::internal
