#include "cri/cni/result.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace berth::cri::cni {
namespace {

using json = nlohmann::json;

Error Bad(std::string what) { return InvalidArgument(std::move(what)); }

// A string member: missing or null reads as "", any other type is an error.
Result<std::string> Str(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Bad(fmt::format("result field {:?} is not a string", key));
  return it->get<std::string>();
}

Result<std::vector<std::string>> StrList(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Bad(fmt::format("result field {:?} is not a list", key));
  for (const auto& v : *it) {
    if (!v.is_string()) return Bad(fmt::format("result field {:?} holds a non-string", key));
    out.push_back(v.get<std::string>());
  }
  return out;
}

// The members of an optional array of objects.
Result<std::vector<const json*>> Objects(const json& obj, const char* key) {
  std::vector<const json*> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Bad(fmt::format("result field {:?} is not a list", key));
  for (const auto& v : *it) {
    if (!v.is_object()) return Bad(fmt::format("result field {:?} holds a non-object", key));
    out.push_back(&v);
  }
  return out;
}

bool ParseIp(std::string_view ip, unsigned char out[16], bool& v4) {
  std::string s(ip);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, s.c_str(), buf) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, buf, 4);
    v4 = true;
    return true;
  }
  if (::inet_pton(AF_INET6, s.c_str(), out) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    v4 = std::memcmp(out, kMapped, 12) == 0;
    return true;
  }
  return false;
}

// Go's net.ParseCIDR: "<ip>/<prefix>" with a prefix within the address length.
bool ValidCidr(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return false;
  unsigned char b[16];
  bool v4 = false;
  std::string_view ip = cidr.substr(0, slash);
  if (!ParseIp(ip, b, v4)) return false;
  std::string_view pfx = cidr.substr(slash + 1);
  int bits = -1;
  auto [p, ec] = std::from_chars(pfx.data(), pfx.data() + pfx.size(), bits);
  if (ec != std::errc() || p != pfx.data() + pfx.size() || pfx.empty()) return false;
  bool literal_v4 = ip.find(':') == std::string_view::npos;
  return bits >= 0 && bits <= (literal_v4 ? 32 : 128);
}

Result<DnsInfo> ParseDns(const json& doc) {
  DnsInfo dns;
  auto it = doc.find("dns");
  if (it == doc.end() || it->is_null()) return dns;
  if (!it->is_object()) return Bad("result field \"dns\" is not an object");
  BERTH_ASSIGN_OR_RETURN(dns.nameservers, StrList(*it, "nameservers"));
  BERTH_ASSIGN_OR_RETURN(dns.domain, Str(*it, "domain"));
  BERTH_ASSIGN_OR_RETURN(dns.search, StrList(*it, "search"));
  BERTH_ASSIGN_OR_RETURN(dns.options, StrList(*it, "options"));
  return dns;
}

Result<Route> ParseRoute(const json& r) {
  Route route;
  BERTH_ASSIGN_OR_RETURN(route.dst, Str(r, "dst"));
  BERTH_ASSIGN_OR_RETURN(route.gw, Str(r, "gw"));
  if (!ValidCidr(route.dst)) return Bad(fmt::format("invalid CIDR address: {}", route.dst));
  return route;
}

Result<std::string> Gateway(const json& obj) {
  BERTH_ASSIGN_OR_RETURN(std::string gw, Str(obj, "gateway"));
  if (!gw.empty() && !CanonicalIp(gw)) return Bad(fmt::format("invalid IP address: {}", gw));
  return gw;
}

// 0.3.0 - 1.0.0: interfaces, ips (with "interface" indexes), routes, dns.
Result<CniResult> ParseCurrent(const json& doc, CniResult r) {
  BERTH_ASSIGN_OR_RETURN(auto ifaces, Objects(doc, "interfaces"));
  for (const json* i : ifaces) {
    Interface iface;
    BERTH_ASSIGN_OR_RETURN(iface.name, Str(*i, "name"));
    BERTH_ASSIGN_OR_RETURN(iface.mac, Str(*i, "mac"));
    BERTH_ASSIGN_OR_RETURN(iface.sandbox, Str(*i, "sandbox"));
    r.interfaces.push_back(std::move(iface));
  }
  BERTH_ASSIGN_OR_RETURN(auto ips, Objects(doc, "ips"));
  for (const json* i : ips) {
    IpConfig ip;
    BERTH_ASSIGN_OR_RETURN(ip.address, Str(*i, "address"));
    if (!ValidCidr(ip.address)) return Bad(fmt::format("invalid CIDR address: {}", ip.address));
    BERTH_ASSIGN_OR_RETURN(ip.gateway, Gateway(*i));
    auto idx = i->find("interface");
    if (idx != i->end() && !idx->is_null()) {
      if (!idx->is_number_integer()) return Bad("result field \"interface\" is not an integer");
      int n = idx->get<int>();
      if (n < 0 || n >= static_cast<int>(r.interfaces.size())) {
        return Bad(fmt::format(
            "invalid interface config: interface index {} is out of range ({} interfaces): "
            "invalid result",
            n, r.interfaces.size()));
      }
      ip.interface = n;
    }
    r.ips.push_back(std::move(ip));
  }
  BERTH_ASSIGN_OR_RETURN(auto routes, Objects(doc, "routes"));
  for (const json* rt : routes) {
    BERTH_ASSIGN_OR_RETURN(Route route, ParseRoute(*rt));
    r.routes.push_back(std::move(route));
  }
  BERTH_ASSIGN_OR_RETURN(r.dns, ParseDns(doc));
  return r;
}

// 0.1.0 / 0.2.0: {"ip4": {"ip", "gateway", "routes"}, "ip6": {...}, "dns"}.
Result<CniResult> ParseLegacy(const json& doc, CniResult r) {
  for (const char* key : {"ip4", "ip6"}) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) continue;
    if (!it->is_object()) return Bad(fmt::format("result field {:?} is not an object", key));
    IpConfig ip;
    BERTH_ASSIGN_OR_RETURN(ip.address, Str(*it, "ip"));
    if (!ValidCidr(ip.address)) return Bad(fmt::format("invalid CIDR address: {}", ip.address));
    BERTH_ASSIGN_OR_RETURN(ip.gateway, Gateway(*it));
    r.ips.push_back(std::move(ip));
    BERTH_ASSIGN_OR_RETURN(auto routes, Objects(*it, "routes"));
    for (const json* rt : routes) {
      BERTH_ASSIGN_OR_RETURN(Route route, ParseRoute(*rt));
      r.routes.push_back(std::move(route));
    }
  }
  BERTH_ASSIGN_OR_RETURN(r.dns, ParseDns(doc));
  return r;
}

}  // namespace

std::optional<std::string> CanonicalIp(std::string_view cidr_or_ip) {
  std::string_view ip = cidr_or_ip.substr(0, cidr_or_ip.find('/'));
  unsigned char b[16];
  bool v4 = false;
  if (!ParseIp(ip, b, v4)) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  if (v4) {
    ::inet_ntop(AF_INET, b + 12, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, b, buf, sizeof buf);
  }
  return std::string(buf);
}

bool IsCidr(std::string_view s) { return ValidCidr(s); }

bool IsIpv4(std::string_view cidr_or_ip) {
  std::string_view ip = cidr_or_ip.substr(0, cidr_or_ip.find('/'));
  unsigned char b[16];
  bool v4 = false;
  return ParseIp(ip, b, v4) && v4;
}

Result<int> CompareVersions(std::string_view a, std::string_view b) {
  auto parse = [](std::string_view v) -> Result<std::vector<int>> {
    std::vector<int> parts;
    if (v.empty()) return Bad("invalid version \"\": the version is empty");
    size_t start = 0;
    while (start <= v.size()) {
      size_t dot = v.find('.', start);
      std::string_view part = v.substr(start, dot == std::string_view::npos ? v.npos : dot - start);
      int n = 0;
      auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
      if (part.empty() || ec != std::errc() || p != part.data() + part.size()) {
        return Bad(fmt::format("invalid version {:?}", v));
      }
      parts.push_back(n);
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    while (parts.size() < 3) parts.push_back(0);
    return parts;
  };
  BERTH_ASSIGN_OR_RETURN(auto pa, parse(a));
  BERTH_ASSIGN_OR_RETURN(auto pb, parse(b));
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    int x = i < pa.size() ? pa[i] : 0;
    int y = i < pb.size() ? pb[i] : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

Result<CniResult> ParseResult(const json& doc) {
  if (!doc.is_object()) return Bad("CNI result is not a JSON object");
  CniResult r;
  BERTH_ASSIGN_OR_RETURN(r.cni_version, Str(doc, "cniVersion"));
  const std::string& v = r.cni_version;
  if (v == "1.0.0" || v == "0.3.0" || v == "0.3.1" || v == "0.4.0") {
    return ParseCurrent(doc, std::move(r));
  }
  if (v == "0.1.0" || v == "0.2.0") return ParseLegacy(doc, std::move(r));
  return Bad(fmt::format("unsupported CNI result version {:?}", v));
}

Result<json> ResultToJson(const CniResult& r, std::string_view version) {
  bool with_ip_version = version == "0.3.0" || version == "0.3.1" || version == "0.4.0";
  if (!with_ip_version && version != "1.0.0") {
    return Bad(fmt::format("cannot convert CNI result to version {:?}", version));
  }
  json doc = json::object();
  doc["cniVersion"] = version;
  if (!r.interfaces.empty()) {
    json ifaces = json::array();
    for (const auto& i : r.interfaces) {
      json o = {{"name", i.name}};
      if (!i.mac.empty()) o["mac"] = i.mac;
      if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
      ifaces.push_back(std::move(o));
    }
    doc["interfaces"] = std::move(ifaces);
  }
  if (!r.ips.empty()) {
    json ips = json::array();
    for (const auto& ip : r.ips) {
      json o = {{"address", ip.address}};
      if (with_ip_version) o["version"] = IsIpv4(ip.address) ? "4" : "6";
      if (!ip.gateway.empty()) o["gateway"] = ip.gateway;
      if (ip.interface) o["interface"] = *ip.interface;
      ips.push_back(std::move(o));
    }
    doc["ips"] = std::move(ips);
  }
  if (!r.routes.empty()) {
    json routes = json::array();
    for (const auto& rt : r.routes) {
      json o = {{"dst", rt.dst}};
      if (!rt.gw.empty()) o["gw"] = rt.gw;
      routes.push_back(std::move(o));
    }
    doc["routes"] = std::move(routes);
  }
  json dns = json::object();
  if (!r.dns.nameservers.empty()) dns["nameservers"] = r.dns.nameservers;
  if (!r.dns.domain.empty()) dns["domain"] = r.dns.domain;
  if (!r.dns.search.empty()) dns["search"] = r.dns.search;
  if (!r.dns.options.empty()) dns["options"] = r.dns.options;
  doc["dns"] = std::move(dns);
  return doc;
}

}  // namespace berth::cri::cni
