#include "shim/manager.h"

#include <google/protobuf/any.pb.h>
#include <linux/limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "common/timeutil.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "shim/runc.h"
#include "shim/service.h"
#include "shim/sha256.h"
#include "shim/spawn.h"
#include "ttrpc/ttrpc.h"

namespace berth::shim {
namespace {

std::string Cwd() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof(buf)) != nullptr ? std::string(buf) : std::string(".");
}

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("/proc/self/exe");
}

// Moves `pid` into Options.shim_cgroup (a path inside the hierarchies).
Status JoinCgroup(pid_t pid, const std::string& cgroup) {
  std::string procs_line = std::to_string(pid);
  CgroupMode mode = DetectCgroupMode();
  if (mode == CgroupMode::kUnified) {
    return fs::WriteFileAtomic("/sys/fs/cgroup" + cgroup + "/cgroup.procs", procs_line);
  }
  bool joined = false;
  for (const char* c : {"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb",
                        "memory", "net_cls", "net_prio", "perf_event", "pids", "rdma", "systemd"}) {
    std::string path = std::string("/sys/fs/cgroup/") + c + cgroup + "/cgroup.procs";
    if (::access(path.c_str(), W_OK) != 0) {
      continue;
    }
    FILE* f = std::fopen(path.c_str(), "we");
    if (f == nullptr) {
      continue;
    }
    std::fputs(procs_line.c_str(), f);
    joined = std::fclose(f) == 0 || joined;
  }
  return joined ? Ok() : NotFound("failed to load cgroup " + cgroup);
}

Status AdjustOomScore(pid_t pid) {
  auto parent = fs::ReadFile("/proc/" + std::to_string(::getppid()) + "/oom_score_adj");
  if (!parent) {
    return std::move(parent).error();
  }
  int score = std::atoi(parent->c_str()) + 1;
  if (score > 1000) {
    score = 1000;
  }
  std::string path = "/proc/" + std::to_string(pid) + "/oom_score_adj";
  FILE* f = std::fopen(path.c_str(), "we");
  if (f == nullptr) {
    return ErrnoError(errno, "open " + path);
  }
  std::fprintf(f, "%d", score);
  if (std::fclose(f) != 0) {
    return ErrnoError(errno, "write " + path);
  }
  return Ok();
}

// Whether something listens on the unix socket `path`.
bool SocketAnswers(const std::string& path) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  fs::UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return sock.Valid() &&
         ::connect(sock.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

Result<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags f;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      break;
    }
    if (a == "--") {
      ++i;
      break;
    }
    a = a.substr(a[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (a == "debug" || a == "v") {
      bool b = !value || *value == "true" || *value == "1";
      (a == "debug" ? f.debug : f.version) = b;
      continue;
    }
    std::string* target = nullptr;
    if (a == "namespace") {
      target = &f.ns;
    } else if (a == "id") {
      target = &f.id;
    } else if (a == "address") {
      target = &f.address;
    } else if (a == "publish-binary") {
      target = &f.publish_binary;
    } else if (a == "bundle") {
      target = &f.bundle;
    } else if (a == "socket") {
      target = &f.socket;
    } else {
      return InvalidArgument("flag provided but not defined: -" + a);
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return InvalidArgument("flag needs an argument: -" + a);
      }
      value = args[++i];
    }
    *target = *value;
  }
  if (i < args.size()) {
    f.action = args[i];
  }
  return f;
}

std::string RuncRootFor(const std::string& bundle) {
  std::filesystem::path p = std::filesystem::path(bundle).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // a trailing slash
  const std::filesystem::path task_dir = p.parent_path().parent_path();
  if (p.is_absolute() && task_dir.filename() == "io.containerd.runtime.v2.task" &&
      task_dir.has_parent_path() && task_dir.parent_path() != task_dir.root_path()) {
    return (task_dir.parent_path() / "runc").string();
  }
  return kDefaultRuncRoot;
}

std::string SocketPath(const std::string& address, const std::string& ns, const std::string& group,
                       const std::string& dir) {
  return dir + "/" + Sha256Hex(address + "/" + ns + "/" + group);
}

std::string GroupId(const std::string& config_json, const std::string& id) {
  auto spec = nlohmann::json::parse(config_json, nullptr, false);
  if (spec.is_object()) {
    auto ann = spec.find("annotations");
    if (ann != spec.end() && ann->is_object()) {
      for (const char* key : {"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"}) {
        auto it = ann->find(key);
        if (it != ann->end() && it->is_string()) {
          return it->get<std::string>();
        }
      }
    }
  }
  return id;
}

int StartShim(const Flags& flags) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "containerd-shim-berth-v2: %s\n", msg.c_str());
    return 1;
  };
  std::string cwd = Cwd();
  auto config = fs::ReadFile(cwd + "/config.json");
  if (!config) {
    return fail(config.error().ToString());
  }
  std::string socket = SocketPath(flags.address, flags.ns, GroupId(*config, flags.id));
  std::string address = "unix://" + socket;
  if (auto st = fs::MkdirAll(kSocketDir, 0711); !st) {
    return fail(st.error().ToString());
  }
  auto listener = ttrpc::Server::Listen(socket);
  if (!listener) {
    if (listener.error().Is(Errc::kAlreadyExists)) {
      // A live shim already serves this group: join it.
      if (auto st = fs::ReplaceFile(cwd + "/address", address, 0644); !st) {
        return fail("write existing socket for shim: " + st.error().ToString());
      }
      std::fputs(address.c_str(), stdout);
      return 0;
    }
    return fail("create new shim socket: " + listener.error().ToString());
  }
  auto cleanup_socket = [&] { ::unlink(socket.c_str()); };
  if (auto st = fs::ReplaceFile(cwd + "/address", address, 0644); !st) {
    cleanup_socket();
    return fail(st.error().ToString());
  }
  std::vector<std::string> argv{SelfExe(), "-namespace", flags.ns,     "-id",
                                flags.id,  "-address",   flags.address};
  if (flags.debug) {
    argv.emplace_back("-debug");
  }
  auto pid = Spawn(
      SpawnOptions{.argv = argv, .fds = {{3, listener->Get()}}, .dir = cwd, .new_pgid = true});
  if (!pid) {
    cleanup_socket();
    return fail(pid.error().ToString());
  }
  auto kill_child = [&] {
    ::kill(*pid, SIGKILL);
    cleanup_socket();
  };
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!input.empty()) {
    google::protobuf::Any any;
    if (!any.ParseFromString(input)) {
      kill_child();
      return fail("unmarshal runtime options: not a protobuf Any");
    }
    containerd::runc::v1::Options opts;
    if (any.type_url() == "containerd.runc.v1.Options" && opts.ParseFromString(any.value()) &&
        !opts.shim_cgroup().empty()) {
      if (auto st = JoinCgroup(*pid, opts.shim_cgroup()); !st) {
        kill_child();
        return fail("failed to join cgroup " + opts.shim_cgroup() + ": " + st.error().ToString());
      }
    }
  }
  if (auto st = AdjustOomScore(*pid); !st) {
    kill_child();
    return fail("failed to adjust OOM score for shim: " + st.error().ToString());
  }
  std::fputs(address.c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

int DeleteShim(const Flags& flags) {
  std::string bundle = flags.bundle.empty() ? Cwd() : flags.bundle;
  RuncOptions opts;
  if (auto text = fs::ReadFile(bundle + "/options.json")) {
    if (auto o = ParseOptionsJson(*text)) {
      opts = std::move(*o);
    }
  }
  std::string binary = opts.binary_name();
  if (auto text = fs::ReadFile(bundle + "/runtime"); text && !text->empty()) {
    binary = *text;
  }
  std::string root = opts.root().empty() ? RuncRootFor(bundle) : opts.root();
  Runc runc(RuncConfig{.binary = binary.empty() ? "runc" : binary,
                       .root = root + "/" + flags.ns,
                       .log_path = bundle + "/log.json",
                       .systemd_cgroup = opts.systemd_cgroup()});
  if (auto st = runc.Delete(flags.id, true); !st) {
    log::L().WithError(st.error()).Warn("failed to remove runc container");
  }
  if (auto st = mount::UnmountAll(bundle + "/rootfs"); !st) {
    log::L().WithError(st.error()).Warn("failed to cleanup rootfs mount");
  }
  // The serving shim is gone: a socket file it left (killed) would leak. Only a socket nobody
  // answers on is removed, since a grouped shim may still serve other containers.
  if (auto config = fs::ReadFile(bundle + "/config.json")) {
    std::string socket = SocketPath(flags.address, flags.ns, GroupId(*config, flags.id));
    if (!SocketAnswers(socket)) {
      ::unlink(socket.c_str());
    }
  }
  int pid = 0;
  if (auto p = ReadPidFile(bundle + "/init.pid")) {
    pid = *p;
  } else {
    log::L().WithError(p.error()).Warn("failed to read init pid file");
  }
  containerd::task::v2::DeleteResponse resp;
  resp.set_pid(static_cast<uint32_t>(pid));
  resp.set_exit_status(128 + SIGKILL);
  int64_t now = UnixNanos(Now());
  resp.mutable_exited_at()->set_seconds(now / 1000000000);
  resp.mutable_exited_at()->set_nanos(static_cast<int32_t>(now % 1000000000));
  std::string out = resp.SerializeAsString();
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace berth::shim
