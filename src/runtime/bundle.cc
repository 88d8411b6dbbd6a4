#include "runtime/bundle.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/identifiers.h"
#include "common/log.h"
#include "common/mount.h"

namespace berth::runtime {
namespace {

// The host gid of the container's root group, 0 without a user namespace mapping
// (containerd's remappedGID in runtime/v2/bundle_linux.go).
Result<uint32_t> RemappedGid(std::string_view spec) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(spec);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(fmt::format("task spec is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) return InvalidArgument("task spec is not a JSON object");
  auto linux_it = j.find("linux");
  if (linux_it == j.end() || !linux_it->is_object()) return 0u;
  auto maps = linux_it->find("gidMappings");
  if (maps == linux_it->end() || !maps->is_array()) return 0u;
  for (const auto& m : *maps) {
    if (m.value("containerID", uint32_t{1}) == 0) return m.value("hostID", uint32_t{0});
  }
  return 0u;
}

std::string Dir(const std::string& path) { return path.substr(0, path.find_last_of('/')); }

}  // namespace

Status AtomicDelete(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string hidden = path.substr(0, slash + 1) + "." + path.substr(slash + 1);
  if (::rename(path.c_str(), hidden.c_str()) != 0) {
    if (errno == ENOENT) return Ok();
    return ErrnoError(errno, "rename " + path);
  }
  return fs::RemoveAll(hidden);
}

Result<Bundle> Bundle::Create(const std::string& root, const std::string& state,
                              const std::string& ns, const std::string& id, std::string_view spec) {
  if (auto st = identifiers::Validate(id); !st) {
    return std::move(st).error().Wrap(fmt::format("invalid task id {}", id));
  }
  BERTH_ASSIGN_OR_RETURN(uint32_t gid, RemappedGid(spec));
  Bundle b(id, ns, state + "/" + ns + "/" + id);
  std::string work = root + "/" + ns + "/" + id;

  BERTH_TRY(fs::MkdirAll(Dir(b.path_), 0711));
  if (::mkdir(b.path_.c_str(), 0700) != 0) {
    if (errno == EEXIST) return AlreadyExists(fmt::format("bundle {}", b.path_));
    return ErrnoError(errno, "create bundle " + b.path_);
  }
  // From here on, failures remove what was made.
  struct Undo {
    std::vector<std::string> paths;
    bool armed = true;
    ~Undo() {
      if (!armed) return;
      for (const auto& p : paths) (void)fs::RemoveAll(p);
    }
  } undo{.paths = {b.path_}};
  if (gid != 0) {
    if (::chown(b.path_.c_str(), static_cast<uid_t>(-1), gid) != 0) {
      return ErrnoError(errno, "chown bundle " + b.path_);
    }
    if (::chmod(b.path_.c_str(), 0710) != 0) return ErrnoError(errno, "chmod " + b.path_);
  }
  BERTH_TRY(fs::MkdirAll(Dir(work), 0711));
  std::string rootfs = b.path_ + "/rootfs";
  if (::mkdir(rootfs.c_str(), 0711) != 0) return ErrnoError(errno, "create " + rootfs);
  if (::mkdir(work.c_str(), 0711) != 0) {
    if (errno != EEXIST) return ErrnoError(errno, "create work dir " + work);
    BERTH_TRY(fs::RemoveAll(work));
    if (::mkdir(work.c_str(), 0711) != 0) return ErrnoError(errno, "create work dir " + work);
  }
  undo.paths.push_back(work);
  if (::symlink(work.c_str(), (b.path_ + "/work").c_str()) != 0) {
    return ErrnoError(errno, "link work dir of " + b.path_);
  }
  BERTH_TRY(fs::ReplaceFile(b.path_ + "/config.json", spec, 0666));
  undo.armed = false;
  return b;
}

Bundle Bundle::Load(const std::string& state, const std::string& ns, const std::string& id) {
  return Bundle(id, ns, state + "/" + ns + "/" + id);
}

Status Bundle::Delete() const {
  std::string work;
  char buf[PATH_MAX];
  ssize_t n = ::readlink((path_ + "/work").c_str(), buf, sizeof buf - 1);
  if (n > 0) work.assign(buf, static_cast<size_t>(n));
  std::string rootfs = path_ + "/rootfs";
  if (auto st = mount::UnmountAll(rootfs); !st) {
    return std::move(st).error().Wrap("unmount rootfs " + rootfs);
  }
  if (::rmdir(rootfs.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove bundle rootfs " + rootfs);
  }
  Status bundle_status = AtomicDelete(path_);
  Status work_status = work.empty() ? Ok() : AtomicDelete(work);
  if (!bundle_status) return bundle_status;
  return work_status;
}

}  // namespace berth::runtime
