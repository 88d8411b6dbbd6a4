#include "cri/cni/conf.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::cri::cni::internal {
namespace {

using json = nlohmann::json;

Result<json> ParseJson(std::string_view bytes, std::string_view what) {
  json doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument(fmt::format("{}: invalid JSON", what));
  return doc;
}

Status CheckPlugin(const json& conf) {
  if (!conf.is_object()) return InvalidArgument("error parsing configuration: not an object");
  auto t = conf.find("type");
  if (t == conf.end() || !t->is_string() || t->get<std::string>().empty()) {
    return InvalidArgument("error parsing configuration: missing 'type'");
  }
  for (const char* key : {"name", "cniVersion"}) {
    auto it = conf.find(key);
    if (it != conf.end() && !it->is_null() && !it->is_string()) {
      return InvalidArgument(fmt::format("error parsing configuration: invalid {} type", key));
    }
  }
  return Ok();
}

std::string StrOr(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<NetworkConfList> ConfListFromBytes(std::string_view bytes) {
  BERTH_ASSIGN_OR_RETURN(json doc, ParseJson(bytes, "error parsing configuration list"));
  if (!doc.is_object()) {
    return InvalidArgument("error parsing configuration list: not a JSON object");
  }
  NetworkConfList list;
  list.bytes = std::string(bytes);
  auto name = doc.find("name");
  if (name == doc.end()) return InvalidArgument("error parsing configuration list: no name");
  if (!name->is_string()) {
    return InvalidArgument("error parsing configuration list: invalid name type");
  }
  list.name = name->get<std::string>();
  auto version = doc.find("cniVersion");
  if (version != doc.end()) {
    if (!version->is_string()) {
      return InvalidArgument("error parsing configuration list: invalid cniVersion type");
    }
    list.cni_version = version->get<std::string>();
  }
  auto plugins = doc.find("plugins");
  if (plugins == doc.end()) {
    return InvalidArgument("error parsing configuration list: no 'plugins' key");
  }
  if (!plugins->is_array()) {
    return InvalidArgument("error parsing configuration list: invalid 'plugins' type");
  }
  if (plugins->empty()) {
    return InvalidArgument("error parsing configuration list: no plugins in list");
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    const json& p = (*plugins)[i];
    if (auto st = CheckPlugin(p); !st) {
      return std::move(st).error().Wrap(fmt::format("failed to parse plugin config {}", i));
    }
    list.plugins.push_back(p);
  }
  return list;
}

Result<NetworkConfList> ConfListFromConfBytes(std::string_view bytes) {
  BERTH_ASSIGN_OR_RETURN(json conf, ParseJson(bytes, "error parsing configuration"));
  BERTH_TRY(CheckPlugin(conf));
  json list = {{"name", StrOr(conf, "name")},
               {"cniVersion", StrOr(conf, "cniVersion")},
               {"plugins", json::array({conf})}};
  return ConfListFromBytes(list.dump());
}

Result<std::vector<std::string>> ConfFiles(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return names;
    return ErrnoError(errno, fmt::format("open {}", dir));
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    // filepath.Ext: from the last dot of the name.
    auto dot = name.rfind('.');
    if (dot == std::string_view::npos) continue;
    std::string_view ext = name.substr(dot);
    if (ext != ".conf" && ext != ".conflist" && ext != ".json") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      std::string full = dir + "/" + std::string(name);
      is_dir = ::lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (!is_dir) names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<Network>> LoadConfDir(const std::string& dir, int max) {
  auto files = ConfFiles(dir);
  if (!files) {
    return Unknown(fmt::format("failed to read config file: {}: failed to read config file",
                               files.error().ToString()));
  }
  if (files->empty()) {
    return Unknown(fmt::format("no network config found in {}: cni plugin not initialized", dir));
  }
  std::vector<Network> networks;
  for (const std::string& name : *files) {
    std::string path = dir + "/" + name;
    auto bytes = fs::ReadFile(path);
    bool is_list = name.ends_with(".conflist");
    if (!bytes) {
      return Unknown(fmt::format("failed to load CNI config {}file {}: error reading {}: {}: {}",
                                 is_list ? "list " : "", path, path, bytes.error().ToString(),
                                 "invalid cni config"));
    }
    Result<NetworkConfList> list =
        is_list ? ConfListFromBytes(*bytes) : ConfListFromConfBytes(*bytes);
    if (!list) {
      return Unknown(fmt::format("failed to load CNI config {}file {}: {}: invalid cni config",
                                 is_list ? "list " : "", path, list.error().What()));
    }
    networks.push_back(
        Network{.list = std::move(*list), .ifname = fmt::format("eth{}", networks.size())});
    if (static_cast<int>(networks.size()) == max) break;
  }
  return networks;
}

}  // namespace berth::cri::cni::internal
