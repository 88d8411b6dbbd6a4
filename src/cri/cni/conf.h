#pragma once
// CNI network configuration lists (libcni conf.go; go-cni opts.go loadFromConfDir), private to
// cri/cni.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"

namespace berth::cri::cni::internal {

// One network: a list of plugin configurations run in order (libcni NetworkConfigList).
struct NetworkConfList {
  std::string name;
  std::string cni_version;
  std::vector<nlohmann::json> plugins;  // each an object with a non-empty string "type"
  std::string bytes;                    // the list's source document (cached as "config")
};

// A loaded network and the interface it gets in the pod ("lo", "eth0", "eth1", ...).
struct Network {
  NetworkConfList list;
  std::string ifname;
};

// The loopback network containerd always loads first (ifname "lo").
inline constexpr std::string_view kLoopbackConf =
    R"({"cniVersion":"0.3.1","name":"cni-loopback","plugins":[{"type":"loopback"}]})";

// libcni ConfListFromBytes: an object with a string "name", optional string "cniVersion", and
// a non-empty "plugins" array of objects each having a string "type". InvalidArgument with
// libcni's texts ("error parsing configuration list: no name", ...).
Result<NetworkConfList> ConfListFromBytes(std::string_view bytes);
// libcni ConfFromBytes + ConfListFromConf: a single plugin configuration (must have "type")
// wrapped as {"cniVersion": <its cniVersion>, "name": <its name>, "plugins": [<it>]}.
Result<NetworkConfList> ConfListFromConfBytes(std::string_view bytes);

// The names (not paths) of the files in `dir` ending .conf, .conflist or .json (directories
// skipped, not recursive), sorted. A missing dir gives an empty list.
Result<std::vector<std::string>> ConfFiles(const std::string& dir);

// go-cni loadFromConfDir: the first `max` (0 = all) networks of `dir` in sorted file order, with
// ifnames eth0, eth1, ... (the loopback network's "lo" is not counted). Errors have go-cni's texts:
// "no network config found in <dir>: cni plugin not initialized", "failed to load CNI config list
// file <f>: <why>: invalid cni config", "failed to load CNI config file <f>: <why>: invalid cni
// config".
Result<std::vector<Network>> LoadConfDir(const std::string& dir, int max);

}  // namespace berth::cri::cni::internal
