#pragma once
// CNI results (CNI spec 0.1.0 - 1.0.0; libcni pkg/types/{020,040,100}) in one model: 1.0.0's.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"

namespace berth::cri::cni {

struct Interface {
  std::string name;
  std::string mac;
  std::string sandbox;  // netns path, "" for host-side interfaces
};

struct IpConfig {
  std::string address;  // CIDR, "10.88.0.5/16"
  std::string gateway;  // "" if none
  // Index into CniResult::interfaces; none = the default interface (eth0).
  std::optional<int> interface;
};

struct Route {
  std::string dst;  // CIDR
  std::string gw;   // "" if none
};

struct DnsInfo {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
};

struct CniResult {
  std::string cni_version;  // the version the plugin answered in
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  DnsInfo dns;
};

// Parses a plugin's result. `cniVersion` selects the format: 0.1.0/0.2.0 (ip4/ip6 objects),
// 0.3.0/0.3.1/0.4.0 (ips with "version"), 1.0.0. InvalidArgument for an unsupported version
// ("unsupported CNI result version \"x\""), a malformed document, an address that is not a CIDR,
// or an interface index outside `interfaces`.
Result<CniResult> ParseResult(const nlohmann::json& doc);

// The result as a document of `version` (0.3.0, 0.3.1, 0.4.0 or 1.0.0; libcni's GetAsVersion):
// 0.3.x/0.4.0 carry ips[].version "4"/"6". InvalidArgument for other versions.
Result<nlohmann::json> ResultToJson(const CniResult& result, std::string_view version);

// Compares dotted CNI versions numerically (-1, 0, 1). InvalidArgument for a malformed one.
Result<int> CompareVersions(std::string_view a, std::string_view b);

// The IP of a CIDR or bare address in Go's net.IP.String() form ("10.0.0.1", "fd00::1"; an
// IPv4-mapped IPv6 address prints as IPv4). nullopt if it does not parse.
std::optional<std::string> CanonicalIp(std::string_view cidr_or_ip);
// Whether `s` is "<ip>/<prefix length>" (Go's net.ParseCIDR).
bool IsCidr(std::string_view s);
// Whether a CIDR or bare address is IPv4 (Go's To4() != nil, IPv4-mapped included).
bool IsIpv4(std::string_view cidr_or_ip);

}  // namespace berth::cri::cni
