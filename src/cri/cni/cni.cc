#include "cri/cni/cni.h"

#include <sys/stat.h>

#include <optional>
#include <system_error>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "cri/cni/conf.h"
#include "cri/cni/invoke.h"

namespace berth::cri::cni {

using json = nlohmann::json;
using internal::Network;

// What a load saw of conf_dir: each matching file's name, size, mtime and ctime (ns), inode.
struct Cni::Signature {
  bool dir_readable = true;
  std::vector<std::tuple<std::string, int64_t, int64_t, int64_t, uint64_t>> files;
  bool operator==(const Signature&) const = default;
};

namespace {

int64_t Nanos(const timespec& ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }

}  // namespace

std::pair<std::string, std::vector<std::string>> SelectPodIps(const std::vector<IpInfo>& ips,
                                                              std::string_view ip_pref) {
  std::vector<std::string> all;
  all.reserve(ips.size());
  for (const auto& ip : ips) all.push_back(ip.ip);
  if (all.empty()) return {};
  if (all.size() == 1) return {all[0], {}};
  if (ip_pref != "ipv6" && ip_pref != "cni") {
    if (!ip_pref.empty() && ip_pref != "ipv4") {
      log::L().With("ip_pref", ip_pref).Warn("invalid ip_pref, falling back to ipv4");
    }
    for (size_t i = 0; i < all.size(); ++i) {
      if (IsIpv4(all[i])) {
        std::vector<std::string> extra(all.begin(), all.begin() + static_cast<ptrdiff_t>(i));
        extra.insert(extra.end(), all.begin() + static_cast<ptrdiff_t>(i) + 1, all.end());
        return {all[i], std::move(extra)};
      }
    }
  }
  // "ipv6": containerd tests To16() != nil, true of every IP: the first entry. "cni": as is.
  return {all[0], std::vector<std::string>(all.begin() + 1, all.end())};
}

json SetupResult::ToJson() const {
  json ifaces = json::object();
  for (const auto& [name, info] : interfaces) {
    json ips = nullptr;  // Go's nil slice
    for (const auto& ip : info.ip_configs) {
      ips.push_back({{"IP", ip.ip}, {"Gateway", ip.gateway}});
    }
    ifaces[name] = {{"IPConfigs", std::move(ips)}, {"Mac", info.mac}, {"Sandbox", info.sandbox}};
  }
  json dns_list = nullptr;
  for (const auto& d : dns) {
    json o = json::object();
    if (!d.nameservers.empty()) o["nameservers"] = d.nameservers;
    if (!d.domain.empty()) o["domain"] = d.domain;
    if (!d.search.empty()) o["search"] = d.search;
    if (!d.options.empty()) o["options"] = d.options;
    dns_list.push_back(std::move(o));
  }
  json route_list = nullptr;
  for (const auto& r : routes) {
    json o = {{"dst", r.dst}};
    if (!r.gw.empty()) o["gw"] = r.gw;
    route_list.push_back(std::move(o));
  }
  return {{"Interfaces", std::move(ifaces)},
          {"DNS", std::move(dns_list)},
          {"Routes", std::move(route_list)}};
}

Result<std::unique_ptr<Cni>> Cni::New(Config config) {
  if (!config.conf_dir.empty()) {
    if (auto st = fs::MkdirAll(config.conf_dir, 0700); !st) {
      return std::move(st).error().Wrap(
          fmt::format("failed to create cni conf dir={}", config.conf_dir));
    }
  }
  std::unique_ptr<Cni> cni(new Cni(std::move(config)));
  cni->MaybeReload();
  return cni;
}

Cni::Cni(Config config) : config_(std::move(config)) {}
Cni::~Cni() = default;

Cni::Signature Cni::Scan() const {
  Signature sig;
  auto names = internal::ConfFiles(config_.conf_dir);
  if (!names) {
    sig.dir_readable = false;
    return sig;
  }
  for (const auto& name : *names) {
    struct stat st {};
    std::string path = config_.conf_dir + "/" + name;
    if (::stat(path.c_str(), &st) != 0) {
      sig.files.emplace_back(name, -1, -1, -1, 0);
      continue;
    }
    sig.files.emplace_back(name, st.st_size, Nanos(st.st_mtim), Nanos(st.st_ctim), st.st_ino);
  }
  return sig;
}

void Cni::MaybeReload() {
  Signature sig = Scan();
  std::lock_guard lock(mu_);
  if (signature_ && *signature_ == sig) return;
  signature_ = std::make_unique<Signature>(std::move(sig));
  (void)LoadLocked();
}

Status Cni::LoadLocked() {
  auto networks = std::make_shared<std::vector<Network>>();
  auto lo = internal::ConfListFromBytes(internal::kLoopbackConf);
  BERTH_CHECK(lo.has_value(), "the loopback configuration parses");
  networks->push_back(Network{.list = std::move(*lo), .ifname = "lo"});
  auto loaded = internal::LoadConfDir(config_.conf_dir, config_.max_conf_num);
  Status result = Ok();
  if (loaded) {
    for (auto& n : *loaded) networks->push_back(std::move(n));
    if (load_status_ != "OK") {
      log::L().With("dir", config_.conf_dir).Info("CNI config loaded");
    }
    load_status_ = "OK";
  } else {
    std::string text =
        fmt::format("cni config load failed: {}: failed to load cni config", loaded.error().What());
    if (text != load_status_) log::L().With("error", text).Error("failed to load cni config");
    load_status_ = text;
    result = Unknown(std::move(text));
  }
  networks_ = std::move(networks);
  return result;
}

Status Cni::Reload() {
  Signature sig = Scan();
  std::lock_guard lock(mu_);
  signature_ = std::make_unique<Signature>(std::move(sig));
  return LoadLocked();
}

std::shared_ptr<const std::vector<Network>> Cni::Networks() {
  MaybeReload();
  std::lock_guard lock(mu_);
  return networks_;
}

Status Cni::Ready() {
  if (Networks()->size() < 2) return Unknown(std::string(kNotInitialized));
  return Ok();
}

std::string Cni::LoadStatus() {
  MaybeReload();
  std::lock_guard lock(mu_);
  return load_status_;
}

json Cni::ConfigJson() {
  auto networks = Networks();
  json nets = json::array();
  for (const auto& n : *networks) {
    json plugins = json::array();
    for (const auto& p : n.list.plugins) {
      // types.NetConf as Go marshals it.
      json net = {{"cniVersion", p.value("cniVersion", "")},
                  {"name", p.value("name", "")},
                  {"type", p.value("type", "")},
                  {"ipam", json::object()},
                  {"dns", json::object()}};
      if (auto c = p.find("capabilities"); c != p.end() && c->is_object() && !c->empty()) {
        net["capabilities"] = *c;
      }
      if (auto i = p.find("ipam"); i != p.end() && i->is_object() && i->contains("type")) {
        net["ipam"]["type"] = (*i)["type"];
      }
      if (auto d = p.find("dns"); d != p.end() && d->is_object()) net["dns"] = *d;
      plugins.push_back({{"Network", std::move(net)}, {"Source", p.dump()}});
    }
    nets.push_back({{"Config",
                     {{"Name", n.list.name},
                      {"CNIVersion", n.list.cni_version},
                      {"Plugins", std::move(plugins)},
                      {"Source", n.list.bytes}}},
                    {"IFName", n.ifname}});
  }
  return {{"PluginDirs", config_.bin_dirs},
          {"PluginConfDir", config_.conf_dir},
          {"PluginMaxConfNum", config_.max_conf_num},
          {"Prefix", "eth"},
          {"Networks", std::move(nets)}};
}

Result<SetupResult> Cni::Setup(const PodNetwork& pod) {
  auto networks = Networks();
  if (networks->size() < 2) return Unknown(std::string(kNotInitialized));
  BERTH_ASSIGN_OR_RETURN(json caps, CapabilityArgs(pod));
  internal::Invoker invoker(config_.bin_dirs, config_.cache_dir, config_.plugin_timeout);
  auto runtime_conf = [&](const Network& n) {
    return internal::RuntimeConf{.container_id = pod.id,
                                 .netns = pod.netns,
                                 .ifname = n.ifname,
                                 .args = CniArgs(pod),
                                 .capability_args = caps};
  };

  // go-cni attaches all networks at once (lo and eth0 in parallel). Threads started here share
  // the calling thread's network namespace, where the plugins must run.
  const size_t count = networks->size();
  std::vector<std::optional<Result<json>>> added(count);
  auto attach = [&](size_t i) {
    const Network& n = (*networks)[i];
    added[i].emplace(invoker.AddNetworkList(n.list, runtime_conf(n)));
  };
  {
    std::vector<std::jthread> workers;
    for (size_t i = 1; i < count; ++i) {
      try {
        workers.emplace_back(attach, i);
      } catch (const std::system_error&) {
        attach(i);  // no thread to spare: attach this one here
      }
    }
    attach(0);
  }  // joins the workers

  SetupResult out;
  out.interfaces["eth0"] = {};
  for (size_t i = 0; i < count; ++i) {
    const Network& n = (*networks)[i];
    Result<json>& doc = *added[i];
    if (!doc) return std::move(doc).error();
    auto parsed = ParseResult(*doc);
    if (!parsed) return std::move(parsed).error();
    CniResult& r = *parsed;
    // go-cni createResult: interfaces by name; IPs to the interface their index names, eth0
    // when they have none; DNS and routes collected.
    for (const auto& iface : r.interfaces) {
      out.interfaces[iface.name] = InterfaceInfo{.mac = iface.mac, .sandbox = iface.sandbox};
    }
    for (const auto& ip : r.ips) {
      const std::string name = ip.interface ? r.interfaces[*ip.interface].name : "eth0";
      out.interfaces[name].ip_configs.push_back(
          IpInfo{.ip = CanonicalIp(ip.address).value_or(ip.address),
                 .gateway = ip.gateway.empty() ? "" : CanonicalIp(ip.gateway).value_or("")});
    }
    out.dns.push_back(r.dns);
    out.routes.insert(out.routes.end(), r.routes.begin(), r.routes.end());
    BERTH_ASSIGN_OR_RETURN(json raw, ResultToJson(r, "1.0.0"));
    out.networks.push_back(NetworkResult{
        .network = n.list.name, .ifname = n.ifname, .result = std::move(r), .raw = std::move(raw)});
  }
  const auto& eth0 = out.interfaces["eth0"].ip_configs;
  if (eth0.empty()) {
    return Unknown(fmt::format("failed to find network info for sandbox \"{}\"", pod.id));
  }
  std::tie(out.ip, out.additional_ips) = SelectPodIps(eth0, config_.ip_pref);
  return out;
}

Status Cni::Remove(const PodNetwork& pod) {
  auto networks = Networks();
  if (networks->size() < 2) return Unknown(std::string(kNotInitialized));
  BERTH_ASSIGN_OR_RETURN(json caps, CapabilityArgs(pod));
  internal::Invoker invoker(config_.bin_dirs, config_.cache_dir, config_.plugin_timeout);
  for (const Network& n : *networks) {
    internal::RuntimeConf rt{.container_id = pod.id,
                             .netns = pod.netns,
                             .ifname = n.ifname,
                             .args = CniArgs(pod),
                             .capability_args = caps};
    Status st = invoker.DelNetworkList(n.list, rt);
    if (st) continue;
    // go-cni: an empty netns allows best-effort cleanup, and "not found" may mean already gone.
    const std::string& text = st.error().What();
    if ((pod.netns.empty() && text.find("no such file or directory") != std::string::npos) ||
        text.find("not found") != std::string::npos) {
      log::L().With("network", n.list.name).With("error", text).Debug("ignoring CNI DEL error");
      continue;
    }
    return st;
  }
  return Ok();
}

}  // namespace berth::cri::cni
