#pragma once
// What CRI asks of a pod's network, and how it becomes CNI_ARGS and capability arguments
// (containerd 1.6 pkg/cri/server/sandbox_run.go cniNamespaceOpts; go-cni namespace_opts.go).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"

namespace berth::cri::cni {

struct PortMapping {
  std::string protocol;  // "tcp", "udp" or "sctp" (lowercased when sent)
  int32_t host_port = 0;
  int32_t container_port = 0;
  std::string host_ip;
};

// Rates in bit/s, bursts in bits (the bandwidth plugin's runtimeConfig).
struct Bandwidth {
  uint64_t ingress_rate = 0;
  uint64_t ingress_burst = 0;
  uint64_t egress_rate = 0;
  uint64_t egress_burst = 0;
};

struct Dns {
  std::vector<std::string> servers;
  std::vector<std::string> searches;
  std::vector<std::string> options;
};

struct PodNetwork {
  std::string id;             // sandbox id: CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID
  std::string netns;          // netns path; "" on Remove when the netns is already closed
  std::string name, ns, uid;  // pod metadata: K8S_POD_NAME, K8S_POD_NAMESPACE, K8S_POD_UID
  std::vector<PortMapping> port_mappings;  // only host_port > 0 are sent
  // Sent as capability "bandwidth". Unset: derived from `annotations` (BandwidthFromAnnotations).
  std::optional<Bandwidth> bandwidth;
  // CRI dns_config; sent as capability "dns" when present.
  std::optional<Dns> dns;
  // Pod annotations: capability "io.kubernetes.cri.pod-annotations"; bandwidth source.
  std::map<std::string, std::string> annotations;
};

inline constexpr std::string_view kIngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth";
inline constexpr std::string_view kEgressBandwidthAnnotation = "kubernetes.io/egress-bandwidth";
inline constexpr std::string_view kPodAnnotationsCapability = "io.kubernetes.cri.pod-annotations";

// A Kubernetes resource quantity ("1M", "10Mi", "1.5G", "100k", "1e6") as an integer, rounded
// up (resource.Quantity.Value()). InvalidArgument for a malformed quantity.
Result<int64_t> ParseQuantity(std::string_view quantity);

// containerd's toCNIBandWidth: kubernetes.io/ingress-bandwidth and egress-bandwidth as rates,
// bursts math.MaxUint32; nullopt when neither annotation is present. InvalidArgument "reading
// pod bandwidth annotations: ..." for a malformed quantity or one outside 1k..1P.
Result<std::optional<Bandwidth>> BandwidthFromAnnotations(
    const std::map<std::string, std::string>& annotations);

// CNI_ARGS pairs in the order they are sent: IgnoreUnknown=1, K8S_POD_NAMESPACE, K8S_POD_NAME,
// K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID.
std::vector<std::pair<std::string, std::string>> CniArgs(const PodNetwork& pod);

// Every capability argument of the pod (libcni filters them per plugin): "portMappings" (when
// any host_port > 0), "bandwidth" (when set or annotated), "dns" (when set) and
// "io.kubernetes.cri.pod-annotations" (always), with CNI's convention keys. Errors as
// BandwidthFromAnnotations.
Result<nlohmann::json> CapabilityArgs(const PodNetwork& pod);

}  // namespace berth::cri::cni
