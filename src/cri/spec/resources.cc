// Container resources: CRI LinuxContainerResources into the spec (pkg/cri/opts WithResources,
// used at creation and by UpdateContainerResources) and back out for ContainerStatus.
#include "cri/spec/internal.h"

namespace berth::cri::spec {

using internal::json;

Status internal::WithResources(oci::Spec& s, const ::runtime::v1::LinuxContainerResources& res,
                               const Options& opts) {
  // Checked first so that a failure changes nothing.
  if (!opts.disable_hugetlb_controller && !opts.host.hugetlb_controller &&
      !opts.tolerate_missing_hugetlb_controller) {
    return Plain(
        "huge pages limits are specified but hugetlb cgroup controller is missing. Please set "
        "tolerate_missing_hugetlb_controller to `true` to ignore this error");
  }
  json& r = Resources(s);
  // Go allocates both even when every field is zero: "cpu": {} and "memory": {} appear.
  json& cpu = Object(r, "cpu");
  json& memory = Object(r, "memory");
  if (res.cpu_period() != 0) cpu["period"] = static_cast<uint64_t>(res.cpu_period());
  if (res.cpu_quota() != 0) cpu["quota"] = res.cpu_quota();
  if (res.cpu_shares() != 0) cpu["shares"] = static_cast<uint64_t>(res.cpu_shares());
  if (!res.cpuset_cpus().empty()) cpu["cpus"] = res.cpuset_cpus();
  if (!res.cpuset_mems().empty()) cpu["mems"] = res.cpuset_mems();
  const int64_t limit = res.memory_limit_in_bytes();
  const int64_t swap = res.memory_swap_limit_in_bytes();
  if (limit != 0) {
    memory["limit"] = limit;
    // swap = limit keeps the container from swapping, where a swap controller exists.
    if (swap == 0 && opts.host.swap_controller) memory["swap"] = limit;
  }
  if (swap != 0 && opts.host.swap_controller) memory["swap"] = swap;
  if (!opts.disable_hugetlb_controller && opts.host.hugetlb_controller) {
    for (const auto& h : res.hugepage_limits()) {
      if (!r.contains("hugepageLimits") || !r["hugepageLimits"].is_array()) {
        r["hugepageLimits"] = json::array();
      }
      r["hugepageLimits"].push_back({{"pageSize", h.page_size()}, {"limit", h.limit()}});
    }
  }
  if (!res.unified().empty()) {
    json& unified = Object(r, "unified");
    for (const auto& [k, v] : res.unified()) unified[k] = v;
  }
  return Ok();
}

Status UpdateResources(oci::Spec& s, const ::runtime::v1::LinuxContainerResources& resources,
                       const Options& opts) {
  oci::Spec updated = s;  // updateOCIResource works on a deep copy
  auto st = internal::WithResources(updated, resources, opts);
  if (!st) return std::move(st).error().Wrap("unable to set linux container resources");
  s = std::move(updated);
  return Ok();
}

::runtime::v1::LinuxContainerResources ResourcesFromSpec(const oci::Spec& s) {
  ::runtime::v1::LinuxContainerResources out;
  auto number = [](const json& obj, const char* key) -> const json* {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return nullptr;
    return &*it;
  };
  if (!s.is_object()) return out;
  if (s.contains("process")) {
    if (const json* adj = number(s["process"], "oomScoreAdj")) {
      out.set_oom_score_adj(adj->get<int64_t>());
    }
  }
  if (!s.contains("linux") || !s["linux"].is_object() || !s["linux"].contains("resources")) {
    return out;
  }
  const json& r = s["linux"]["resources"];
  if (!r.is_object()) return out;
  if (r.contains("cpu") && r["cpu"].is_object()) {
    const json& cpu = r["cpu"];
    if (const json* v = number(cpu, "period")) out.set_cpu_period(v->get<int64_t>());
    if (const json* v = number(cpu, "quota")) out.set_cpu_quota(v->get<int64_t>());
    if (const json* v = number(cpu, "shares")) out.set_cpu_shares(v->get<int64_t>());
    if (cpu.contains("cpus") && cpu["cpus"].is_string()) out.set_cpuset_cpus(cpu["cpus"]);
    if (cpu.contains("mems") && cpu["mems"].is_string()) out.set_cpuset_mems(cpu["mems"]);
  }
  if (r.contains("memory") && r["memory"].is_object()) {
    const json& memory = r["memory"];
    if (const json* v = number(memory, "limit")) out.set_memory_limit_in_bytes(v->get<int64_t>());
    if (const json* v = number(memory, "swap")) {
      out.set_memory_swap_limit_in_bytes(v->get<int64_t>());
    }
  }
  if (r.contains("hugepageLimits") && r["hugepageLimits"].is_array()) {
    for (const auto& h : r["hugepageLimits"]) {
      if (!h.is_object()) continue;
      auto* limit = out.add_hugepage_limits();
      if (h.contains("pageSize") && h["pageSize"].is_string()) limit->set_page_size(h["pageSize"]);
      if (const json* v = number(h, "limit")) limit->set_limit(v->get<uint64_t>());
    }
  }
  if (r.contains("unified") && r["unified"].is_object()) {
    for (const auto& [k, v] : r["unified"].items()) {
      if (v.is_string()) (*out.mutable_unified())[k] = v.get<std::string>();
    }
  }
  return out;
}

}  // namespace berth::cri::spec
