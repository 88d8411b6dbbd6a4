#include "common/mount.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"

namespace berth::mount {
namespace {

struct FlagWord {
  bool clear;
  unsigned long flag;  // NOLINT(google-runtime-int)
};

// containerd's table (mount/mount_linux.go parseMountOptions).
const std::map<std::string_view, FlagWord>& FlagTable() {
  static const auto* table = new std::map<std::string_view, FlagWord>{
      {"async", {true, MS_SYNCHRONOUS}},
      {"atime", {true, MS_NOATIME}},
      {"bind", {false, MS_BIND}},
      {"defaults", {false, 0}},
      {"dev", {true, MS_NODEV}},
      {"diratime", {true, MS_NODIRATIME}},
      {"dirsync", {false, MS_DIRSYNC}},
      {"exec", {true, MS_NOEXEC}},
      {"mand", {false, MS_MANDLOCK}},
      {"noatime", {false, MS_NOATIME}},
      {"nodev", {false, MS_NODEV}},
      {"nodiratime", {false, MS_NODIRATIME}},
      {"noexec", {false, MS_NOEXEC}},
      {"nomand", {true, MS_MANDLOCK}},
      {"norelatime", {true, MS_RELATIME}},
      {"nostrictatime", {true, MS_STRICTATIME}},
      {"nosuid", {false, MS_NOSUID}},
      {"rbind", {false, MS_BIND | MS_REC}},
      {"relatime", {false, MS_RELATIME}},
      {"remount", {false, MS_REMOUNT}},
      {"ro", {false, MS_RDONLY}},
      {"rw", {true, MS_RDONLY}},
      {"strictatime", {false, MS_STRICTATIME}},
      {"suid", {true, MS_NOSUID}},
      {"sync", {false, MS_SYNCHRONOUS}},
  };
  return *table;
}

// Propagation words (as runc's table); containerd 1.6 passes them as data, which no filesystem
// accepts, so honouring them only turns an error into the intended mount.
const std::map<std::string_view, unsigned long>& PropagationTable() {  // NOLINT(google-runtime-int)
  static const auto* table = new std::map<std::string_view, unsigned long>{
      // NOLINT
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  return *table;
}

std::string Describe(const Mount& m, const std::string& target) {
  std::string opts;
  for (const auto& o : m.options) {
    if (!opts.empty()) opts += ',';
    opts += o;
  }
  return fmt::format("mount {} {} on {} (options \"{}\")", m.type, m.source, target, opts);
}

}  // namespace

ParsedOptions ParseOptions(const std::vector<std::string>& options) {
  ParsedOptions out;
  for (const auto& o : options) {
    if (auto it = FlagTable().find(o); it != FlagTable().end() && it->second.flag != 0) {
      if (it->second.clear) {
        out.flags &= ~it->second.flag;
      } else {
        out.flags |= it->second.flag;
      }
    } else if (auto p = PropagationTable().find(o); p != PropagationTable().end()) {
      out.propagation |= p->second;
    } else if (o == "loop") {
      out.loop = true;
    } else if (o != "defaults") {
      if (!out.data.empty()) out.data += ',';
      out.data += o;
    }
  }
  return out;
}

namespace {

// containerd's compactLowerdirOption: when an overlay's option data would not fit in a page,
// lowerdirs that share a parent directory are passed relative to it and the mount runs in a
// child that chdir()s there. The overlay snapshotter keeps such a directory of short links
// (<root>/l/<id>), so even 128+ layers fit. Returns the directory ("" = nothing to compact).
std::string CompactLowerdirs(std::string& data) {
  auto pos = data.find("lowerdir=");
  if (pos == std::string::npos || (pos != 0 && data[pos - 1] != ',')) return "";
  size_t start = pos + 9;
  size_t end = data.find(',', start);
  if (end == std::string::npos) end = data.size();
  std::string value = data.substr(start, end - start);
  std::vector<std::string> dirs;
  for (size_t i = 0, next; i <= value.size(); i = next + 1) {
    next = value.find(':', i);
    if (next == std::string::npos) next = value.size();
    dirs.push_back(value.substr(i, next - i));
  }
  if (dirs.size() < 2 || dirs[0].empty() || dirs[0][0] != '/') return "";
  // Longest common directory prefix ending in '/'.
  std::string common = dirs[0].substr(0, dirs[0].rfind('/') + 1);
  for (const auto& d : dirs) {
    while (!common.empty() && d.compare(0, common.size(), common) != 0) {
      common.pop_back();
      common.resize(common.rfind('/') + 1);
    }
  }
  if (common.size() <= 1) return "";
  std::string relative;
  for (const auto& d : dirs) {
    if (!relative.empty()) relative += ':';
    relative += d.substr(common.size());
  }
  data.replace(start, end - start, relative);
  return common;
}

// mount(2) run in a child whose working directory is `dir`, so relative lowerdirs resolve there.
int MountInDir(const std::string& dir, const Mount& m, const std::string& target,
               unsigned long flags, const std::string& data) {  // NOLINT(google-runtime-int)
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(errno);
    int rc = ::mount(m.source.c_str(), target.c_str(), m.type.c_str(), flags, data.c_str());
    ::_exit(rc == 0 ? 0 : errno);
  }
  if (pid < 0) return errno;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

}  // namespace

Status MountOne(const Mount& m, const std::string& target) {
  if (m.type.starts_with("fuse.") || m.type.starts_with("fuse3.")) {
    return NotImplemented(Describe(m, target) + ": FUSE helper mounts are not supported");
  }
  ParsedOptions parsed = ParseOptions(m.options);
  if (m.type == "bind") parsed.flags |= MS_BIND;  // the type alone names a bind mount
  if (parsed.loop) {
    return NotImplemented(Describe(m, target) + ": loop mounts are not supported");
  }
  static const auto page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::string chdir_to;
  if (m.type == "overlay" && parsed.data.size() >= page_size && !target.empty() &&
      target[0] == '/') {
    chdir_to = CompactLowerdirs(parsed.data);
  }
  if (parsed.data.size() >= page_size) {  // the kernel copies at most one page, NUL included
    return InvalidArgument(fmt::format("{}: mount options is too long ({} bytes, limit {})",
                                       Describe(m, target), parsed.data.size(), page_size - 1));
  }
  const unsigned long flags = parsed.flags;  // NOLINT(google-runtime-int)
  if ((flags & MS_REMOUNT) == 0 || !parsed.data.empty()) {
    if (!chdir_to.empty()) {
      if (int err = MountInDir(chdir_to, m, target, flags, parsed.data); err != 0) {
        return ErrnoError(err, Describe(m, target) + " (lowerdirs relative to " + chdir_to + ")");
      }
    } else {
      const char* data = parsed.data.empty() ? nullptr : parsed.data.c_str();
      if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), flags, data) != 0) {
        return ErrnoError(errno, Describe(m, target));
      }
    }
  }
  if (parsed.propagation != 0) {
    if (::mount("", target.c_str(), "", parsed.propagation, nullptr) != 0) {
      Error err = ErrnoError(errno, Describe(m, target) + ": set propagation");
      (void)::umount2(target.c_str(), MNT_DETACH);
      return err;
    }
  }
  constexpr unsigned long kBindReadonly = MS_BIND | MS_RDONLY;  // NOLINT(google-runtime-int)
  if ((flags & kBindReadonly) == kBindReadonly && (flags & MS_REMOUNT) == 0) {
    // A bind ignores MS_RDONLY: make it read-only with a remount of the new mount point.
    if (::mount("", target.c_str(), "", flags | MS_REMOUNT, nullptr) != 0) {
      Error err = ErrnoError(errno, Describe(m, target) + ": remount read-only");
      (void)::umount2(target.c_str(), MNT_DETACH);
      return err;
    }
  }
  return Ok();
}

Status MountAll(const std::vector<Mount>& mounts, const std::string& target) {
  for (const auto& m : mounts) {
    if (auto s = MountOne(m, target); !s) {
      if (auto u = UnmountAll(target); !u) {
        log::L().WithError(u.error()).With("target", target).Warn("undo partial mounts");
      }
      return s;
    }
  }
  return Ok();
}

Status UnmountAll(const std::string& target) {
  if (target.empty()) return Ok();
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0 && errno == ENOENT) return Ok();
  for (;;) {
    int busy = 0;
    for (;;) {
      if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) break;
      if (errno == EINVAL) return Ok();  // not a mount point (any more): done
      if (errno == EBUSY && ++busy < 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (errno == EBUSY) {
        log::L().With("target", target).Warn("mount busy: detaching lazily");
        if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) break;
      }
      return ErrnoError(errno, "unmount " + target);
    }
  }
}

Status WithTempMount(const std::vector<Mount>& mounts, const std::string& tmp_root,
                     const std::function<Status(const std::string& root)>& fn) {
  BERTH_TRY(fs::MkdirAll(tmp_root, 0700));
  std::string tmpl = tmp_root + "/berth-mount-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoError(errno, "create temporary mount point in " + tmp_root);
  }
  const std::string root = tmpl;
  Status result = MountAll(mounts, root);
  if (!result) {
    result = std::move(result).error().Wrap("failed to mount " + root);
  } else if (auto s = fn(root); !s) {
    result = std::move(s).error().Wrap("mount callback failed on " + root);
  }
  if (auto u = UnmountAll(root); !u) {
    Error err = std::move(u).error().Wrap("failed to unmount " + root);
    if (!result) err = Error(err.Code(), err.What() + ": " + result.error().ToString());
    // Never remove a directory that may still show the mounted tree.
    return err;
  }
  if (::rmdir(root.c_str()) != 0) {
    log::L()
        .With("dir", root)
        .With("error", std::strerror(errno))
        .Error("failed to remove mount temp dir");
  }
  return result;
}

namespace {

// Mount points from /proc/self/mountinfo (field 5), octal escapes (\040 ...) decoded.
Result<std::vector<std::string>> MountPoints() {
  BERTH_ASSIGN_OR_RETURN(std::string info, fs::ReadFile("/proc/self/mountinfo"));
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < info.size()) {
    size_t eol = info.find('\n', pos);
    if (eol == std::string::npos) eol = info.size();
    std::string_view line(info.data() + pos, eol - pos);
    pos = eol + 1;
    size_t start = 0;
    for (int field = 0; field < 4 && start != std::string_view::npos; ++field) {
      start = line.find(' ', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos) continue;
    std::string_view raw = line.substr(start, line.find(' ', start) - start);
    std::string point;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 3 < raw.size()) {
        int v = (raw[i + 1] - '0') * 64 + (raw[i + 2] - '0') * 8 + (raw[i + 3] - '0');
        point += static_cast<char>(v);
        i += 3;
      } else {
        point += raw[i];
      }
    }
    out.push_back(std::move(point));
  }
  return out;
}

}  // namespace

Status CleanupTempMounts(const std::string& tmp_root) {
  BERTH_ASSIGN_OR_RETURN(auto points, MountPoints());
  std::string prefix = tmp_root;
  while (prefix.size() > 1 && prefix.ends_with('/')) prefix.pop_back();
  prefix += '/';
  std::vector<std::string> mine;
  for (auto& p : points) {
    if (p.starts_with(prefix)) mine.push_back(std::move(p));
  }
  std::sort(mine.begin(), mine.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  Status first = Ok();
  for (const auto& p : mine) {
    Status s = UnmountAll(p);
    if (s && ::rmdir(p.c_str()) != 0 && errno != ENOENT) s = ErrnoError(errno, "remove " + p);
    if (!s) {
      log::L().WithError(s.error()).With("mount", p).Warn("cleanup of temporary mount failed");
      if (first) first = std::move(s);
    }
  }
  return first;
}

std::vector<Mount> ReadonlyMounts(std::vector<Mount> mounts) {
  for (auto& m : mounts) {
    std::vector<std::string> out;
    if (m.type == "overlay") {
      std::string upper;
      for (auto& o : m.options) {
        if (o.starts_with("upperdir=")) {
          upper = o.substr(9);
        } else if (!o.starts_with("workdir=")) {
          out.push_back(std::move(o));
        }
      }
      if (!upper.empty()) {
        for (auto& o : out) {
          if (o.starts_with("lowerdir=")) o = fmt::format("lowerdir={}:{}", upper, o.substr(9));
        }
      }
    } else {
      for (auto& o : m.options) {
        if (o != "rw" && o != "ro") out.push_back(std::move(o));
      }
      out.emplace_back("ro");
    }
    m.options = std::move(out);
  }
  return mounts;
}

}  // namespace berth::mount
