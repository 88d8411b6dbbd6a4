#include "cri/cni/pod.h"

#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace berth::cri::cni {
namespace {

using json = nlohmann::json;

constexpr std::string_view kQuantityFormat =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

// The multiplier of a quantity suffix (resource.Quantity's binarySI, decimalSI and exponent
// forms); nullopt if it is not one.
std::optional<long double> SuffixMultiplier(std::string_view s) {
  static const std::pair<std::string_view, long double> kSuffixes[] = {
      {"", 1.0L},      {"Ki", 0x1p10L}, {"Mi", 0x1p20L}, {"Gi", 0x1p30L},
      {"Ti", 0x1p40L}, {"Pi", 0x1p50L}, {"Ei", 0x1p60L}, {"n", 1e-9L},
      {"u", 1e-6L},    {"m", 1e-3L},    {"k", 1e3L},     {"M", 1e6L},
      {"G", 1e9L},     {"T", 1e12L},    {"P", 1e15L},    {"E", 1e18L}};
  for (const auto& [name, mult] : kSuffixes) {
    if (s == name) return mult;
  }
  if (s.size() >= 2 && (s[0] == 'e' || s[0] == 'E')) {
    std::string_view exp = s.substr(1);
    bool neg = false;
    if (exp[0] == '+' || exp[0] == '-') {
      neg = exp[0] == '-';
      exp.remove_prefix(1);
    }
    if (exp.empty() || exp.size() > 3) return std::nullopt;  // beyond 1e999 is not a rate
    int e = 0;
    for (char c : exp) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      e = e * 10 + (c - '0');
    }
    return std::pow(10.0L, static_cast<long double>(neg ? -e : e));
  }
  return std::nullopt;
}

}  // namespace

Result<int64_t> ParseQuantity(std::string_view q) {
  size_t i = 0;
  bool neg = false;
  if (i < q.size() && (q[i] == '+' || q[i] == '-')) neg = q[i++] == '-';
  long double value = 0;
  long double scale = 0;  // 0 before the decimal point, then 0.1, 0.01, ...
  size_t digits = 0;
  for (; i < q.size(); ++i) {
    char c = q[i];
    if (c == '.') {
      if (scale != 0) return InvalidArgument(std::string(kQuantityFormat));
      scale = 0.1L;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      ++digits;
      if (scale == 0) {
        value = value * 10 + (c - '0');
      } else {
        value += (c - '0') * scale;
        scale /= 10;
      }
    } else {
      break;
    }
  }
  if (digits == 0) return InvalidArgument(std::string(kQuantityFormat));
  auto mult = SuffixMultiplier(q.substr(i));
  if (!mult) return InvalidArgument("unable to parse quantity's suffix");
  long double v = std::ceil(value * *mult);
  if (!std::isfinite(v)) return InvalidArgument(std::string(kQuantityFormat));
  if (neg) v = -v;
  constexpr auto kMax = static_cast<long double>(std::numeric_limits<int64_t>::max());
  if (v >= kMax) return std::numeric_limits<int64_t>::max();
  if (v <= -kMax) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

Result<std::optional<Bandwidth>> BandwidthFromAnnotations(
    const std::map<std::string, std::string>& annotations) {
  auto read = [&](std::string_view key) -> Result<std::optional<int64_t>> {
    auto it = annotations.find(std::string(key));
    if (it == annotations.end()) return std::optional<int64_t>();
    auto v = ParseQuantity(it->second);
    if (!v) return std::move(v).error().Wrap("reading pod bandwidth annotations");
    // k8s.io/kubernetes pkg/util/bandwidth validateBandwidthIsReasonable.
    if (*v < 1000) {
      return InvalidArgument(
          "reading pod bandwidth annotations: resource is unreasonably small "
          "(< 1kbit)");
    }
    if (*v > 1000000000000000LL) {
      return InvalidArgument(
          "reading pod bandwidth annotations: resource is unreasonably large "
          "(> 1Pbit)");
    }
    return std::optional<int64_t>(*v);
  };
  BERTH_ASSIGN_OR_RETURN(auto ingress, read(kIngressBandwidthAnnotation));
  BERTH_ASSIGN_OR_RETURN(auto egress, read(kEgressBandwidthAnnotation));
  if (!ingress && !egress) return std::optional<Bandwidth>();
  constexpr uint64_t kBurst = std::numeric_limits<uint32_t>::max();  // containerd: MaxUint32
  Bandwidth bw;
  if (ingress) {
    bw.ingress_rate = static_cast<uint64_t>(*ingress);
    bw.ingress_burst = kBurst;
  }
  if (egress) {
    bw.egress_rate = static_cast<uint64_t>(*egress);
    bw.egress_burst = kBurst;
  }
  return std::optional<Bandwidth>(bw);
}

std::vector<std::pair<std::string, std::string>> CniArgs(const PodNetwork& pod) {
  return {{"IgnoreUnknown", "1"},
          {"K8S_POD_NAMESPACE", pod.ns},
          {"K8S_POD_NAME", pod.name},
          {"K8S_POD_INFRA_CONTAINER_ID", pod.id},
          {"K8S_POD_UID", pod.uid}};
}

Result<json> CapabilityArgs(const PodNetwork& pod) {
  json caps = json::object();
  caps[std::string(kPodAnnotationsCapability)] = pod.annotations;
  json ports = json::array();
  for (const auto& pm : pod.port_mappings) {
    if (pm.host_port <= 0) continue;
    std::string proto = pm.protocol;
    for (char& c : proto) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ports.push_back({{"hostPort", pm.host_port},
                     {"containerPort", pm.container_port},
                     {"protocol", proto},
                     {"hostIP", pm.host_ip}});
  }
  if (!ports.empty()) caps["portMappings"] = std::move(ports);
  std::optional<Bandwidth> bw = pod.bandwidth;
  if (!bw) {
    BERTH_ASSIGN_OR_RETURN(bw, BandwidthFromAnnotations(pod.annotations));
  }
  if (bw) {
    caps["bandwidth"] = {{"ingressRate", bw->ingress_rate},
                         {"ingressBurst", bw->ingress_burst},
                         {"egressRate", bw->egress_rate},
                         {"egressBurst", bw->egress_burst}};
  }
  if (pod.dns) {
    caps["dns"] = {{"servers", pod.dns->servers},
                   {"searches", pod.dns->searches},
                   {"options", pod.dns->options}};
  }
  return caps;
}

}  // namespace berth::cri::cni
