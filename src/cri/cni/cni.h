#pragma once
// Pod networking through CNI plugins, as containerd 1.6's CRI plugin drives go-cni v1.1.6 and
// libcni v1.1.1 (reference/cri.md §8, §14): which networks are loaded, and attaching a pod's
// network namespace to them (Setup, at RunPodSandbox) or detaching it (Remove, at
// StopPodSandbox).
//
// Plugins run as child processes of the calling thread, so in the calling thread's network
// namespace — the daemon's (the host's). A caller that has setns()-ed elsewhere (tests) gets
// them there.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"
#include "cri/cni/pod.h"
#include "cri/cni/result.h"

namespace berth::cri::cni {

namespace internal {
struct Network;
}

// The [plugins."io.containerd.grpc.v1.cri".cni] settings that reach here.
struct Config {
  std::vector<std::string> bin_dirs;       // searched in order for a plugin's "type"; CNI_PATH
  std::string conf_dir;                    // *.conf, *.conflist, *.json
  int max_conf_num = 1;                    // networks loaded from conf_dir; 0 = all
  std::string cache_dir = "/var/lib/cni";  // libcni's cache: <cache_dir>/results/...
  std::string ip_pref;                     // "" or "ipv4", "ipv6", "cni"
  // Bound of one plugin run (containerd has only the RPC's deadline; kubelet's is 4 min).
  std::chrono::milliseconds plugin_timeout = std::chrono::minutes(2);
};

// The error text while fewer than 2 networks (loopback + one from conf_dir) are loaded.
inline constexpr std::string_view kNotInitialized = "cni plugin not initialized";

// go-cni's per-interface view of a Setup (cni.Config / cni.IPConfig).
struct IpInfo {
  std::string ip;       // no prefix length, Go's net.IP.String() form
  std::string gateway;  // "" if none
};
struct InterfaceInfo {
  std::vector<IpInfo> ip_configs;
  std::string mac;
  std::string sandbox;
};

// One network's final ADD result.
struct NetworkResult {
  std::string network;  // the network (list) name
  std::string ifname;
  CniResult result;
  nlohmann::json raw;  // the result as a CNI 1.0.0 document (go-cni's Result.Raw())
};

struct SetupResult {
  std::string ip;                                   // primary pod IP (of eth0, chosen by ip_pref)
  std::vector<std::string> additional_ips;          // the rest of eth0's IPs
  std::map<std::string, InterfaceInfo> interfaces;  // by name; always has "eth0"
  std::vector<DnsInfo> dns;                         // one per network
  std::vector<Route> routes;                        // all networks'
  std::vector<NetworkResult> networks;              // in load order (loopback first)

  // go-cni's Result as containerd persists it in the sandbox metadata ("CNIResult"):
  // {"Interfaces":{"eth0":{"IPConfigs":[{"IP":..,"Gateway":..}],"Mac":..,"Sandbox":..}},
  //  "DNS":[...],"Routes":[...]}.
  nlohmann::json ToJson() const;
};

// containerd's selectPodIPs: ip_pref ""/"ipv4" (or unknown) → the first IPv4 is primary and the
// others keep their order; "ipv6" → the first entry (Go's To16() accepts any IP); "cni" → CNI's
// order. Without an IPv4 under ipv4, CNI's order.
std::pair<std::string, std::vector<std::string>> SelectPodIps(const std::vector<IpInfo>& ips,
                                                              std::string_view ip_pref);

class Cni {
 public:
  // Creates conf_dir (0700) if missing, as containerd's config syncer does, and loads it.
  // Configuration errors do not fail this (see LoadStatus()); failing to create conf_dir does.
  static Result<std::unique_ptr<Cni>> New(Config config);
  ~Cni();
  Cni(const Cni&) = delete;
  Cni& operator=(const Cni&) = delete;

  // Every call below first reloads if conf_dir changed: its matching files' names, sizes,
  // mtimes and ctimes are compared with the last load's, so a config written (renamed, removed,
  // changed) at any time is seen by the next call without an inotify watch. A reload replaces
  // the networks wholesale; a failed one leaves only the loopback network (go-cni's Load resets
  // first).

  // Ok when at least 2 networks are loaded; else Unknown(kNotInitialized).
  Status Ready();
  // "OK", or the last load's error ("cni config load failed: no network config found in <dir>:
  // cni plugin not initialized: failed to load cni config", ...): lastCNILoadStatus.
  std::string LoadStatus();
  // Loads now, whatever changed; returns the load's error (UpdateRuntimeConfig's reload).
  Status Reload();
  // go-cni's GetConfig() as Go marshals it (CRI Status verbose "cniconfig"): PluginDirs,
  // PluginConfDir, PluginMaxConfNum, Prefix, Networks[{Config{Name,CNIVersion,Plugins,Source},
  // IFName}].
  nlohmann::json ConfigJson();

  // ADD of the pod's netns to every network, each network a list run by libcni's rules (see
  // reference/cri.md §14): env CNI_COMMAND=ADD, CNI_CONTAINERID=pod.id, CNI_NETNS=pod.netns,
  // CNI_IFNAME (lo, eth0, ...), CNI_ARGS (CniArgs()), CNI_PATH; stdin the plugin config with the
  // list's name and cniVersion, prevResult chaining, runtimeConfig filtered by the plugin's
  // capabilities (CapabilityArgs()). Networks are attached in parallel as go-cni does (one
  // thread per network, all in the caller's netns). Each network's final result is cached at
  // <cache_dir>/results/<network>-<id>-<ifname> (libcni's cniCacheV1 format) for Remove.
  // Errors: Unknown(kNotInitialized); the first failing network's error in load order
  // (`plugin type="<t>" name="<network>" failed (add): <plugin's message>`);
  // InvalidArgument from CapabilityArgs(); `failed to find network info for sandbox "<id>"`
  // when eth0 got no IP. On any error the caller runs Remove (containerd's RunPodSandbox defers
  // teardownPodNetwork): networks that did attach stay attached until then.
  Result<SetupResult> Setup(const PodNetwork& pod);

  // DEL of every network in load order (each list's plugins in reverse, with the cached ADD
  // result as prevResult for cniVersion >= 0.4.0 and the same capability arguments), removing
  // the cache files. Errors whose text contains "not found" (or "no such file or directory"
  // when pod.netns is "") are ignored, as containerd does. Unknown(kNotInitialized) when not
  // ready (StopPodSandbox then fails, as containerd's does).
  Status Remove(const PodNetwork& pod);

 private:
  struct Signature;
  explicit Cni(Config config);
  Signature Scan() const;
  void MaybeReload();
  Status LoadLocked();
  std::shared_ptr<const std::vector<internal::Network>> Networks();

  Config config_;
  std::mutex mu_;
  std::unique_ptr<Signature> signature_;  // of the last load; guarded by mu_
  std::shared_ptr<const std::vector<internal::Network>> networks_;  // guarded by mu_
  std::string load_status_ = "OK";                                  // guarded by mu_
};

}  // namespace berth::cri::cni
