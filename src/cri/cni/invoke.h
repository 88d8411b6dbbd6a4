#pragma once
// Running network configuration lists (libcni api.go: AddNetworkList, DelNetworkList, the result
// cache), private to cri/cni.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"
#include "cri/cni/conf.h"

namespace berth::cri::cni::internal {

// One attachment's runtime arguments (libcni RuntimeConf).
struct RuntimeConf {
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS, in order
  nlohmann::json capability_args = nlohmann::json::object();
};

class Invoker {
 public:
  Invoker(std::vector<std::string> bin_dirs, std::string cache_dir,
          std::chrono::milliseconds timeout)
      : bin_dirs_(std::move(bin_dirs)), cache_dir_(std::move(cache_dir)), timeout_(timeout) {}

  // ADD of every plugin of `list` in order, each given the previous one's result as prevResult;
  // stops at the first failure. The final result (its cniVersion filled in from the list when
  // the plugin left it out) is cached at CacheFile() and returned. Errors: Unknown
  // `plugin type="<type>" name="<network>" failed (add): <plugin's message>`, or
  // `failed to set network "<network>" cached result: ...`.
  Result<nlohmann::json> AddNetworkList(const NetworkConfList& list, const RuntimeConf& rt) const;

  // DEL of every plugin of `list` in reverse order. For lists of cniVersion >= 0.4.0 each gets
  // the cached ADD result (converted to the list's version) as prevResult. The cache file is
  // removed after success. Errors: `plugin type="<type>" name="<network>" failed (delete): ...`,
  // `failed to get network "<network>" cached result: ...`.
  Status DelNetworkList(const NetworkConfList& list, const RuntimeConf& rt) const;

  // <cache_dir>/results/<network>-<container id>-<ifname>.
  std::string CacheFile(const std::string& network, const RuntimeConf& rt) const;

 private:
  Result<std::string> FindInPath(const std::string& type) const;
  // Runs one plugin; its stdout on success, its error text otherwise.
  Result<std::string> ExecPlugin(const std::string& path, const char* command,
                                 const std::string& stdin_conf, const RuntimeConf& rt) const;
  Result<nlohmann::json> CachedResult(const NetworkConfList& list, const RuntimeConf& rt) const;

  std::vector<std::string> bin_dirs_;
  std::string cache_dir_;
  std::chrono::milliseconds timeout_;
};

// libcni buildOneConfig: the plugin's configuration plus "name" and "cniVersion" from the list,
// "prevResult" when given, and "runtimeConfig" holding the capability arguments the plugin
// declares true in its "capabilities" (omitted when none applies).
nlohmann::json BuildOneConfig(const NetworkConfList& list, const nlohmann::json& plugin,
                              const nlohmann::json* prev_result, const RuntimeConf& rt);

// libcni's text of a failed plugin run (RawExec.pluginErr): the CNI error document's "msg" (and
// "; <details>") from stdout, or the stderr text when stdout is empty.
std::string PluginErrorText(int status, const std::string& out, const std::string& err);

}  // namespace berth::cri::cni::internal
