// A container's mounts: the sandbox's files (containerMounts), image volumes (volumeMounts),
// and CRI mounts merged into the spec (pkg/cri/opts WithMounts, ensureShared,
// ensureSharedOrSlave; mount.Lookup; pkg/os ResolveSymbolicLink).
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "common/fs.h"
#include "cri/spec/internal.h"

namespace berth::cri::spec {
namespace {

using internal::json;
using ::runtime::v1::Mount;
using ::runtime::v1::MountPropagation;

constexpr const char* kEtcHostname = "/etc/hostname";
constexpr const char* kEtcHosts = "/etc/hosts";
constexpr const char* kResolvConf = "/etc/resolv.conf";
constexpr const char* kDevShm = "/dev/shm";

// isInCRIMounts.
bool InCriMounts(std::string_view dst, const google::protobuf::RepeatedPtrField<Mount>& mounts) {
  std::string clean = internal::CleanPath(dst);
  return std::any_of(mounts.begin(), mounts.end(), [&](const Mount& m) {
    return internal::CleanPath(m.container_path()) == clean;
  });
}

// The number of '/' in the cleaned destination: shallower mounts first, so that they do not
// shadow deeper ones.
size_t Depth(const Mount& m) {
  std::string clean = internal::CleanPath(m.container_path());
  return static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

// util.GenerateID: 32 random bytes as lowercase hex.
std::string RandomId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      BERTH_CHECK(errno == EINTR, "getrandom failed");
      continue;
    }
    got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string DecodeOctal(std::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 3 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7') {
      out +=
          static_cast<char>((raw[i + 1] - '0') * 64 + (raw[i + 2] - '0') * 8 + (raw[i + 3] - '0'));
      i += 3;
    } else {
      out += raw[i];
    }
  }
  return out;
}

// ensureShared / ensureSharedOrSlave on the mount holding `path`.
Status EnsurePropagation(const std::string& path, bool slave_ok) {
  BERTH_ASSIGN_OR_RETURN(std::string info, fs::ReadFile("/proc/self/mountinfo"));
  BERTH_ASSIGN_OR_RETURN(internal::MountInfo m, internal::LookupMount(path, info));
  for (const auto& opt : internal::Split(m.optional, ' ')) {
    if (opt.starts_with("shared:")) return Ok();
    if (slave_ok && opt.starts_with("master:")) return Ok();
  }
  return internal::Plain(fmt::format("path {:?} is mounted on {:?} but it is not a {} mount", path,
                                     m.mountpoint, slave_ok ? "shared or slave" : "shared"));
}

}  // namespace

namespace internal {

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = text.find(sep, start);
    out.emplace_back(text.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

Result<MountInfo> LookupMount(std::string_view dir, std::string_view mountinfo) {
  const std::string clean = CleanPath(dir);
  std::optional<MountInfo> best;
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t eol = mountinfo.find('\n', pos);
    if (eol == std::string_view::npos) eol = mountinfo.size();
    auto fields = Split(mountinfo.substr(pos, eol - pos), ' ');
    pos = eol + 1;
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    if (fields.size() < 7) continue;
    std::string point = DecodeOctal(fields[4]);
    std::string optional;
    for (size_t i = 6; i < fields.size() && fields[i] != "-"; ++i) {
      if (!optional.empty()) optional += ' ';
      optional += fields[i];
    }
    // mountinfo.ParentsFilter: a string prefix, as containerd compares (not per component).
    if (!clean.starts_with(point)) continue;
    if (!best || point.size() > best->mountpoint.size()) {
      best = MountInfo{std::move(point), std::move(optional)};
    }
  }
  if (!best) return Plain(fmt::format("failed to find the mount info for {:?}", clean));
  return *best;
}

Result<std::string> ResolveSymbolicLink(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError(errno, "lstat " + path);
  if (!S_ISLNK(st.st_mode)) return path;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return ErrnoError(errno, "resolve symlink " + path);
  }
  return std::string(resolved);
}

std::vector<Mount> SandboxFileMounts(const ContainerSpecInput& in) {
  const auto& mounts = in.config.mounts();
  const auto& security = in.config.linux().security_context();
  const bool ro = security.readonly_rootfs();
  std::vector<Mount> out;
  auto add = [&](const char* dst, const std::string& src, bool readonly, bool relabel) {
    Mount m;
    m.set_container_path(dst);
    m.set_host_path(src);
    m.set_readonly(readonly);
    m.set_selinux_relabel(relabel);
    out.push_back(std::move(m));
  };
  if (!InCriMounts(kEtcHostname, mounts)) {
    // Sandboxes of old containerd releases have no hostname file: mounted only if present.
    struct stat st {};
    if (::stat(in.hostname_path.c_str(), &st) == 0) add(kEtcHostname, in.hostname_path, ro, false);
  }
  if (!InCriMounts(kEtcHosts, mounts)) add(kEtcHosts, in.hosts_path, ro, false);
  if (!InCriMounts(kResolvConf, mounts)) add(kResolvConf, in.resolv_conf_path, ro, false);
  if (!InCriMounts(kDevShm, mounts)) {
    bool host_ipc = security.namespace_options().ipc() == ::runtime::v1::NamespaceMode::NODE;
    std::string shm = host_ipc ? kDevShm : in.shm_path;
    add(kDevShm, shm, false, shm != kDevShm);
  }
  return out;
}

Status WithCriMounts(oci::Spec& s, const google::protobuf::RepeatedPtrField<Mount>& cri,
                     const std::vector<Mount>& extra) {
  // CRI mounts win over extra mounts at the same destination.
  std::vector<Mount> mounts(cri.begin(), cri.end());
  for (const auto& e : extra) {
    if (!InCriMounts(e.container_path(), cri)) mounts.push_back(e);
  }
  std::stable_sort(mounts.begin(), mounts.end(),
                   [](const Mount& a, const Mount& b) { return Depth(a) < Depth(b); });

  // The cgroup filesystem, read-only as docker mounts it.
  oci::WithMounts(
      s, {{"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}}});

  // Default mounts stay unless a supplied mount has their destination (all of /dev/* when /dev
  // itself is supplied).
  std::set<std::string> supplied;
  for (const auto& m : mounts) supplied.insert(CleanPath(m.container_path()));
  json kept = json::array();
  for (auto& m : s["mounts"]) {
    std::string dst = CleanPath(m.value("destination", ""));
    if (supplied.count(dst) != 0) continue;
    if (supplied.count("/dev") != 0 && dst.starts_with("/dev/")) continue;
    kept.push_back(std::move(m));
  }
  s["mounts"] = std::move(kept);

  json& linux = Linux(s);
  for (const auto& m : mounts) {
    std::string src = m.host_path();
    struct stat st {};
    if (::stat(src.c_str(), &st) != 0) {
      if (errno != ENOENT) {
        return ErrnoError(errno, fmt::format("failed to stat {:?}", src));
      }
      if (auto made = fs::MkdirAll(src, 0755); !made) {
        return Error(made.error().Code(),
                     fmt::format("failed to mkdir {:?}: {}", src, made.error().What()));
      }
    }
    auto resolved = ResolveSymbolicLink(src);
    if (!resolved) {
      return Error(resolved.error().Code(),
                   fmt::format("failed to resolve symlink {:?}: {}", src, resolved.error().What()));
    }
    src = *resolved;
    std::vector<std::string> options = {"rbind"};
    switch (m.propagation()) {
      case MountPropagation::PROPAGATION_BIDIRECTIONAL:
        BERTH_TRY(EnsurePropagation(src, /*slave_ok=*/false));
        options.emplace_back("rshared");
        linux["rootfsPropagation"] = "rshared";
        break;
      case MountPropagation::PROPAGATION_HOST_TO_CONTAINER:
        BERTH_TRY(EnsurePropagation(src, /*slave_ok=*/true));
        options.emplace_back("rslave");
        if (linux.value("rootfsPropagation", "") != "rshared") {
          linux["rootfsPropagation"] = "rslave";
        }
        break;
      default:  // PRIVATE, and unknown modes (containerd warns): runc's default for the root
        options.emplace_back("rprivate");
        break;
    }
    // Only the mount itself follows `readonly`, not the rootfs setting (unlike docker).
    options.emplace_back(m.readonly() ? "ro" : "rw");
    oci::WithMounts(s, {{m.container_path(), "bind", src, options}});
  }
  return Ok();
}

}  // namespace internal

std::vector<Mount> ImageVolumeMounts(const std::string& cri_root, const std::string& id,
                                     const oci::ImageConfig& image,
                                     const ::runtime::v1::ContainerConfig& config,
                                     const Options& opts) {
  std::vector<Mount> out;
  if (opts.ignore_image_defined_volumes) return out;
  for (const auto& dst : image.volumes) {
    // A CRI mount at the same place replaces the image volume.
    if (InCriMounts(dst, config.mounts())) continue;
    Mount m;
    m.set_container_path(dst);
    m.set_host_path(
        internal::CleanPath(fmt::format("{}/containers/{}/volumes/{}", cri_root, id, RandomId())));
    m.set_selinux_relabel(true);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace berth::cri::spec
