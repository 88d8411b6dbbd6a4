// Users and groups from the image's files, and the image config (oci.WithUser, WithUsername,
// WithAdditionalGIDs, WithImageConfigArgs).
#include "oci/spec.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/json_depth.h"
#include "oci/internal.h"

namespace berth::oci {
namespace {

using namespace internal;  // NOLINT(google-build-using-namespace)

// Go's strconv.Atoi restricted to what a uid/gid may be (0..MaxInt32, decimal, optional '+').
std::optional<uint32_t> ParseId(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  size_t i = (text[0] == '+') ? 1 : 0;
  if (i == text.size()) return std::nullopt;
  uint64_t v = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  if (v > 0x7fffffffULL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// libcontainer/user's int fields: Atoi errors are ignored (0).
uint32_t LenientId(std::string_view text) { return ParseId(text).value_or(0); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

void SetUser(Spec& s, uint32_t uid, uint32_t gid) {
  json& user = Process(s)["user"];
  if (!user.is_object()) user = json::object();
  user["uid"] = uid;
  user["gid"] = gid;
}

void ResetAdditionalGids(Spec& s) {
  json& p = Process(s);
  if (!p.contains("user") || !p["user"].is_object()) p["user"] = {{"uid", 0}, {"gid", 0}};
  p["user"].erase("additionalGids");
}

// ensureAdditionalGids: the primary gid is always first in additionalGids.
void EnsureAdditionalGids(Spec& s) {
  json& p = Process(s);
  if (!p.contains("user") || !p["user"].is_object()) p["user"] = {{"uid", 0}, {"gid", 0}};
  json& user = p["user"];
  uint32_t gid = user.value("gid", 0U);
  json gids = user.value("additionalGids", json::array());
  for (const auto& g : gids) {
    if (g.is_number() && g.get<uint32_t>() == gid) return;
  }
  gids.insert(gids.begin(), gid);
  user["additionalGids"] = gids;
}

Result<std::vector<PasswdEntry>> UsersIn(const RootFs& root) {
  if (!root) return InvalidArgument("rootfs absolute path is required");
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadInRoot(*root, "/etc/passwd"));
  return ParsePasswd(text);
}

Result<std::vector<GroupEntry>> GroupsIn(const RootFs& root) {
  if (!root) return InvalidArgument("rootfs absolute path is required");
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadInRoot(*root, "/etc/group"));
  return ParseGroup(text);
}

// WithUserID: uid/gid from /etc/passwd if the uid is listed, else uid with gid 0.
Status WithUserId(Spec& s, uint32_t uid, const RootFs& root) {
  if (!root) {  // nothing to look the uid up in: as if /etc/passwd were missing
    SetUser(s, uid, 0);
    return Ok();
  }
  auto users = UsersIn(root);
  if (!users) {
    if (users.error().Is(Errc::kNotFound)) {
      SetUser(s, uid, 0);
      return Ok();
    }
    return std::move(users).error();
  }
  for (const auto& u : *users) {
    if (u.uid == uid) {
      SetUser(s, u.uid, u.gid);
      return Ok();
    }
  }
  SetUser(s, uid, 0);
  return Ok();
}

Status WithUsername(Spec& s, std::string_view name, const RootFs& root) {
  BERTH_ASSIGN_OR_RETURN(auto users, UsersIn(root));
  for (const auto& u : users) {
    if (u.name == name) {
      SetUser(s, u.uid, u.gid);
      return Ok();
    }
  }
  return NotFound(fmt::format("no users found (user {:?} in /etc/passwd)", name));
}

}  // namespace

// ---- Users ----

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (const auto& raw : Split(text, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty()) continue;
    auto parts = Split(line, ':');
    PasswdEntry e;
    e.name = parts[0];
    if (parts.size() > 2) e.uid = LenientId(parts[2]);
    if (parts.size() > 3) e.gid = LenientId(parts[3]);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(std::string_view text) {
  std::vector<GroupEntry> out;
  for (const auto& raw : Split(text, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty()) continue;
    auto parts = Split(line, ':');
    GroupEntry e;
    e.name = parts[0];
    if (parts.size() > 2) e.gid = LenientId(parts[2]);
    if (parts.size() > 3 && !parts[3].empty()) e.members = Split(parts[3], ',');
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::string> ReadInRoot(const std::string& root, std::string_view path) {
  fs::UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.Valid()) return ErrnoError(errno, "open rootfs " + root);
  std::string rel(path);
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  struct open_how how {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd =
      static_cast<int>(::syscall(SYS_openat2, dir.Get(), rel.c_str(), &how, sizeof how));  // NOLINT
  if (fd < 0) return ErrnoError(errno, fmt::format("open {} in {}", path, root));
  fs::UniqueFd file(fd);
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(file.Get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, fmt::format("read {} in {}", path, root));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (64U << 20))
      return InvalidArgument(fmt::format("{} in {} is too large", path, root));
  }
  return out;
}

Status WithUser(Spec& s, std::string_view user, const RootFs& root) {
  ResetAdditionalGids(s);
  auto parts = Split(user, ':');
  Status st = Ok();
  if (parts.size() == 1) {
    if (auto uid = ParseId(parts[0])) {
      st = WithUserId(s, *uid, root);
    } else {
      st = WithUsername(s, parts[0], root);
    }
  } else if (parts.size() == 2) {
    auto uid = ParseId(parts[0]);
    auto gid = ParseId(parts[1]);
    uint32_t u = uid.value_or(0);
    uint32_t g = gid.value_or(0);
    if (!uid) {
      BERTH_ASSIGN_OR_RETURN(auto users, UsersIn(root));
      auto it = std::find_if(users.begin(), users.end(),
                             [&](const PasswdEntry& e) { return e.name == parts[0]; });
      if (it == users.end()) {
        return NotFound(fmt::format("no users found (user {:?} in /etc/passwd)", parts[0]));
      }
      u = it->uid;
    }
    if (!gid) {
      BERTH_ASSIGN_OR_RETURN(auto groups, GroupsIn(root));
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& e) { return e.name == parts[1]; });
      if (it == groups.end()) {
        return NotFound(fmt::format("no groups found (group {:?} in /etc/group)", parts[1]));
      }
      g = it->gid;
    }
    SetUser(s, u, g);
  } else {
    return InvalidArgument(fmt::format("invalid USER value {}", user));
  }
  BERTH_TRY(st);
  EnsureAdditionalGids(s);
  return Ok();
}

Status WithAdditionalGids(Spec& s, std::string_view user, const RootFs& root) {
  ResetAdditionalGids(s);
  if (!root) {  // no rootfs to read /etc/group from: as if it were missing
    EnsureAdditionalGids(s);
    return Ok();
  }
  std::string username;
  if (auto uid = ParseId(user)) {
    auto users = UsersIn(root);
    if (!users) {
      if (users.error().Is(Errc::kNotFound)) {
        EnsureAdditionalGids(s);
        return Ok();
      }
      return std::move(users).error();
    }
    auto it = std::find_if(users->begin(), users->end(),
                           [&](const PasswdEntry& e) { return e.uid == *uid; });
    if (it == users->end()) {
      EnsureAdditionalGids(s);
      return Ok();
    }
    username = it->name;
  } else {
    username = user;
  }
  auto groups = GroupsIn(root);
  if (!groups) {
    if (groups.error().Is(Errc::kNotFound)) {
      EnsureAdditionalGids(s);
      return Ok();
    }
    return std::move(groups).error();
  }
  json gids = json::array();
  for (const auto& g : *groups) {
    if (g.name == username) continue;  // only supplemental groups
    if (std::find(g.members.begin(), g.members.end(), username) != g.members.end()) {
      gids.push_back(g.gid);
    }
  }
  if (!gids.empty()) Process(s)["user"]["additionalGids"] = gids;
  EnsureAdditionalGids(s);
  return Ok();
}

// ---- Image config ----

Result<ImageConfig> ParseImageConfig(std::string_view blob) {
  BERTH_TRY(CheckJsonDepth(blob, "image config"));
  json doc = json::parse(blob, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument("image config is not a JSON object");
  }
  ImageConfig out;
  const json config = doc.value("config", json::object());
  if (!config.is_object()) return out;  // "config": null is legal
  auto strings = [&](const char* key, std::vector<std::string>& dst) -> Status {
    if (!config.contains(key) || config[key].is_null()) return Ok();
    if (!config[key].is_array())
      return InvalidArgument(fmt::format("image config: {} is not a list", key));
    for (const auto& v : config[key]) {
      if (!v.is_string())
        return InvalidArgument(fmt::format("image config: {} holds a non-string", key));
      dst.push_back(v.get<std::string>());
    }
    return Ok();
  };
  auto string = [&](const char* key, std::string& dst) -> Status {
    if (!config.contains(key) || config[key].is_null()) return Ok();
    if (!config[key].is_string())
      return InvalidArgument(fmt::format("image config: {} is not a string", key));
    dst = config[key].get<std::string>();
    return Ok();
  };
  BERTH_TRY(strings("Env", out.env));
  BERTH_TRY(strings("Entrypoint", out.entrypoint));
  BERTH_TRY(strings("Cmd", out.cmd));
  BERTH_TRY(string("WorkingDir", out.working_dir));
  BERTH_TRY(string("User", out.user));
  BERTH_TRY(string("StopSignal", out.stop_signal));
  if (config.contains("Labels") && config["Labels"].is_object()) {
    for (const auto& [k, v] : config["Labels"].items()) {
      if (v.is_string()) out.labels[k] = v.get<std::string>();
    }
  }
  if (config.contains("Volumes") && !config["Volumes"].is_null()) {
    if (!config["Volumes"].is_object()) {
      return InvalidArgument("image config: Volumes is not an object");
    }
    for (const auto& [k, v] : config["Volumes"].items()) out.volumes.push_back(k);  // sorted keys
  }
  return out;
}

Status WithImageConfig(Spec& s, const ImageConfig& config, const RootFs& root,
                       const std::vector<std::string>& args) {
  json& p = Process(s);
  if (!s.contains("linux"))
    return InvalidArgument("spec does not contain Linux or Windows section");
  std::vector<std::string> defaults = config.env;
  if (defaults.empty()) defaults = {std::string(kDefaultPathEnv)};
  p["env"] = ReplaceOrAppendEnv(defaults, StringList(p.value("env", json::array())));
  std::vector<std::string> argv = config.entrypoint;
  const auto& cmd = args.empty() ? config.cmd : args;
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  if (argv.empty()) {
    p.erase("args");
  } else {
    p["args"] = argv;
  }
  p["cwd"] = config.working_dir.empty() ? "/" : config.working_dir;
  if (!config.user.empty()) {
    BERTH_TRY(WithUser(s, config.user, root));
    uint32_t uid = s["process"]["user"].value("uid", 0U);
    return WithAdditionalGids(s, std::to_string(uid), root);
  }
  return WithAdditionalGids(s, "root", root);
}

}  // namespace berth::oci
