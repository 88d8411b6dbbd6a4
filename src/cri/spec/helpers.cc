// Small spec options and path helpers of containerd's CRI (pkg/cri/opts/spec*.go,
// pkg/cri/server/helpers*.go).
#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "cri/spec/internal.h"

namespace berth::cri::spec {
namespace internal {

json& Object(json& parent, const char* key) {
  if (!parent.is_object()) parent = json::object();
  json& v = parent[key];
  if (!v.is_object()) v = json::object();
  return v;
}

std::string CleanPath(std::string_view path) {
  if (path.empty()) return ".";
  const bool rooted = path.front() == '/';
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == ".") {
      // skipped
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
    } else {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out = rooted ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  if (out.empty()) return ".";
  return out;
}

std::string BaseName(std::string_view path) {
  if (path.empty()) return ".";
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/") return "/";
  if (auto slash = path.rfind('/'); slash != std::string_view::npos) {
    path.remove_prefix(slash + 1);
  }
  return std::string(path);
}

void WithoutRunMount(oci::Spec& s) {
  if (!s.contains("mounts") || !s["mounts"].is_array()) return;
  json kept = json::array();
  for (auto& m : s["mounts"]) {
    if (CleanPath(m.value("destination", "")) != "/run") kept.push_back(std::move(m));
  }
  s["mounts"] = std::move(kept);
}

void WithoutDefaultSecuritySettings(oci::Spec& s) {
  json& p = Process(s);
  p.erase("apparmorProfile");
  p.erase("rlimits");
  if (s.contains("linux") && s["linux"].is_object()) s["linux"].erase("seccomp");
}

void WithAnnotation(oci::Spec& s, std::string_view key, std::string_view value) {
  Object(s, "annotations")[std::string(key)] = value;
}

void WithSysctls(oci::Spec& s, const std::map<std::string, std::string>& sysctls) {
  if (sysctls.empty()) return;  // an empty map is omitted
  json& target = Object(Linux(s), "sysctl");
  for (const auto& [k, v] : sysctls) target[k] = v;
}

namespace {

std::vector<uint32_t> AdditionalGids(const oci::Spec& s) {
  std::vector<uint32_t> out;
  if (!s.contains("process") || !s["process"].contains("user")) return out;
  const json& user = s["process"]["user"];
  if (!user.contains("additionalGids") || !user["additionalGids"].is_array()) return out;
  for (const auto& g : user["additionalGids"]) {
    if (g.is_number_unsigned()) out.push_back(g.get<uint32_t>());
  }
  return out;
}

// mergeGids: the union, sorted; absent when empty (a nil slice).
void SetMergedGids(oci::Spec& s, const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::set<uint32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  json& user = Object(Process(s), "user");
  if (!user.contains("uid")) user["uid"] = 0;
  if (!user.contains("gid")) user["gid"] = 0;
  if (all.empty()) {
    user.erase("additionalGids");
  } else {
    user["additionalGids"] = std::vector<uint32_t>(all.begin(), all.end());
  }
}

}  // namespace

void WithSupplementalGroups(oci::Spec& s, const std::vector<int64_t>& groups) {
  std::vector<uint32_t> gids;
  gids.reserve(groups.size());
  for (int64_t g : groups) gids.push_back(static_cast<uint32_t>(g));  // Go's uint32(g)
  SetMergedGids(s, AdditionalGids(s), gids);
}

Status WithMergedAdditionalGids(oci::Spec& s, std::string_view user, const oci::RootFs& rootfs) {
  std::vector<uint32_t> before = AdditionalGids(s);
  BERTH_TRY(oci::WithAdditionalGids(s, user, rootfs));
  SetMergedGids(s, AdditionalGids(s), before);
  return Ok();
}

void WithOomScoreAdj(oci::Spec& s, int adj) { Process(s)["oomScoreAdj"] = adj; }

std::map<std::string, std::string> PassthroughAnnotations(
    const google::protobuf::Map<std::string, std::string>& annotations,
    const std::vector<std::string>& globs) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : annotations) {
    for (const auto& glob : globs) {
      // path.Match: '*' and '?' do not match '/'.
      if (::fnmatch(glob.c_str(), key.c_str(), FNM_PATHNAME) == 0) out[key] = value;
    }
  }
  return out;
}

}  // namespace internal

std::string CgroupsPath(std::string_view cgroup_parent, std::string_view id) {
  std::string base = internal::BaseName(cgroup_parent);
  if (base.ends_with(".slice")) return base + ":cri-containerd:" + std::string(id);
  // filepath.Join: empty elements are dropped, the result cleaned.
  std::string joined;
  for (std::string_view part : {cgroup_parent, id}) {
    if (part.empty()) continue;
    if (!joined.empty()) joined += '/';
    joined += part;
  }
  return joined.empty() ? "" : internal::CleanPath(joined);
}

int ClampOomScoreAdj(int adj, const Options& opts) {
  const auto& caps = opts.host.capabilities;
  bool can_lower = std::find(caps.begin(), caps.end(), "CAP_SYS_RESOURCE") != caps.end();
  if (!opts.restrict_oom_score_adj && can_lower) return adj;
  return std::max(adj, opts.host.oom_score_adj);
}

}  // namespace berth::cri::spec
