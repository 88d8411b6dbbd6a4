#include "runtime/binary.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>
#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include "common/fs.h"
#include "common/timeutil.h"

extern char** environ;  // NOLINT: POSIX

namespace berth::runtime {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::vector<std::string> SplitPath(const std::string& path_env) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path_env.size()) {
    size_t end = path_env.find(':', start);
    if (end == std::string::npos) end = path_env.size();
    std::string dir = path_env.substr(start, end - start);
    out.push_back(dir.empty() ? "." : dir);
    start = end + 1;
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Pipe with both ends close-on-exec (the child's copies are dup2'ed by posix_spawn).
Status MakePipe(fs::UniqueFd& read_end, fs::UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  read_end.Reset(fds[0]);
  write_end.Reset(fds[1]);
  return Ok();
}

}  // namespace

std::string BinaryName(std::string_view runtime) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = runtime.find('.', start);
    parts.push_back(runtime.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() < 2) return "";
  return fmt::format("containerd-shim-{}-{}", parts[parts.size() - 2], parts.back());
}

ShimResolver::ShimResolver(std::map<std::string, std::string> shims, std::string daemon_dir,
                           std::string path_env)
    : shims_(std::move(shims)), daemon_dir_(std::move(daemon_dir)), path_(SplitPath(path_env)) {}

Result<std::string> ShimResolver::Search(const std::string& name, bool daemon_dir_first) const {
  std::vector<std::string> dirs;
  if (daemon_dir_first && !daemon_dir_.empty()) dirs.push_back(daemon_dir_);
  for (const auto& d : path_) dirs.push_back(d);
  if (!daemon_dir_first && !daemon_dir_.empty()) dirs.push_back(daemon_dir_);
  for (const auto& d : dirs) {
    std::string candidate = d + "/" + name;
    if (!IsExecutableFile(candidate)) continue;
    if (candidate[0] != '/') {
      char buf[PATH_MAX];
      if (::realpath(candidate.c_str(), buf) == nullptr) continue;
      candidate = buf;
    }
    return candidate;
  }
  return Error(Errc::kNotFound, "");
}

Result<std::string> ShimResolver::Resolve(std::string_view runtime_view) {
  std::string runtime(runtime_view);
  if (runtime.empty()) return InvalidArgument("no runtime name");
  if (runtime[0] == '/') {
    if (!IsExecutableFile(runtime)) {
      return NotFound(fmt::format("invalid custom binary path {}", runtime));
    }
    return runtime;
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(runtime); it != cache_.end()) return it->second;
  }
  std::string path;
  if (auto it = shims_.find(runtime); it != shims_.end()) {
    const std::string& target = it->second;
    if (target[0] == '/') {
      if (!IsExecutableFile(target)) {
        return NotFound(
            fmt::format("runtime {:?}: shim binary {} is not installed", runtime, target));
      }
      path = target;
    } else {
      auto found = Search(target, /*daemon_dir_first=*/true);
      if (!found) {
        return NotFound(fmt::format("runtime {:?} binary not installed {:?}", runtime, target));
      }
      path = *found;
    }
  } else {
    std::string name = BinaryName(runtime);
    // A name is looked up in the daemon's directory and $PATH, never below them: a "/" would
    // make the runtime name a path into a subdirectory.
    if (name.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
      return InvalidArgument(fmt::format(
          "invalid runtime name {:?}: its shim name {:?} must not contain \"/\"", runtime, name));
    }
    if (name.empty()) {
      return InvalidArgument(
          fmt::format("invalid runtime name {}, correct runtime name should be either format like "
                      "`io.containerd.runc.v1` or a full path to the binary",
                      runtime));
    }
    auto found = Search(name, /*daemon_dir_first=*/false);
    if (!found) {
      return NotFound(fmt::format("runtime {:?} binary not installed {:?}", runtime, name));
    }
    path = *found;
  }
  std::lock_guard lock(mu_);
  return cache_.emplace(runtime, path).first->second;
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, const std::string& cwd,
                                 std::string_view input, bool combine,
                                 std::chrono::milliseconds timeout) {
  fs::UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  BERTH_TRY(MakePipe(in_r, in_w));
  BERTH_TRY(MakePipe(out_r, out_w));
  BERTH_TRY(MakePipe(err_r, err_w));

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.Get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.Get(), 1);
  posix_spawn_file_actions_adddup2(&fa, combine ? out_w.Get() : err_w.Get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(rc, fmt::format("exec {}", argv[0]));
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();

  // Small inputs (a serialized Any) fit the pipe buffer; a shim that never reads gets EPIPE.
  size_t off = 0;
  while (off < input.size()) {
    ssize_t n = ::write(in_w.Get(), input.data() + off, input.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    off += static_cast<size_t>(n);
  }
  in_w.Reset();

  CommandResult result;
  int wstatus = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  fs::UniqueFd* fds[2] = {&out_r, &err_r};
  std::string* bufs[2] = {&result.out, &result.err};
  for (;;) {
    pollfd pfds[2];
    int n = 0;
    int map[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i]->Valid()) {
        pfds[n] = {.fd = fds[i]->Get(), .events = POLLIN, .revents = 0};
        map[n++] = i;
      }
    }
    if (n == 0) break;
    // After the child has exited, only drain what is already there: a daemonized grandchild
    // may hold the pipes open forever.
    int pr = ::poll(pfds, n, exited ? 0 : 100);
    if (pr < 0 && errno != EINTR) return ErrnoError(errno, "poll");
    bool got = false;
    for (int k = 0; k < n && pr > 0; ++k) {
      if (pfds[k].revents == 0) continue;
      char buf[4096];
      ssize_t r = ::read(pfds[k].fd, buf, sizeof buf);
      if (r > 0) {
        bufs[map[k]]->append(buf, static_cast<size_t>(r));
        got = true;
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        fds[map[k]]->Reset();
      }
    }
    if (!exited) {
      pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
      if (w == pid) {
        exited = true;
      } else if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);  // our own child, by pid
        while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        }
        return Error(Errc::kDeadlineExceeded,
                     fmt::format("{} did not finish within {} ms", argv[0], timeout.count()));
      }
    } else if (!got) {
      break;
    }
  }
  if (!exited) {
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

std::vector<std::string> ShimEnv(const ShimCommand& cmd) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("TTRPC_ADDRESS=") || kv.starts_with("GOMAXPROCS=") ||
        kv.starts_with("SCHED_CORE=")) {
      continue;
    }
    env.emplace_back(kv);
  }
  env.push_back("GOMAXPROCS=2");
  env.push_back("TTRPC_ADDRESS=" + cmd.ttrpc_address);
  if (cmd.sched_core) env.push_back("SCHED_CORE=1");
  return env;
}

namespace {
std::vector<std::string> BaseArgs(const ShimCommand& cmd) {
  return {cmd.binary,        "-namespace",       cmd.ns, "-address", cmd.grpc_address,
          "-publish-binary", cmd.publish_binary, "-id",  cmd.id};
}
}  // namespace

Result<std::string> ShimStart(const ShimCommand& cmd, std::string_view options) {
  auto argv = BaseArgs(cmd);
  if (cmd.debug) argv.push_back("-debug");
  argv.push_back("start");
  BERTH_ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, ShimEnv(cmd), cmd.bundle, options,
                                                     /*combine=*/true, kStartTimeout));
  if (r.status != 0) {
    return Unknown(fmt::format("{}: exit status {}", Trim(r.out), r.status));
  }
  std::string address = Trim(r.out);
  if (address.empty()) return Unknown(fmt::format("shim {} start printed no address", cmd.binary));
  return address;
}

Result<DeleteResult> ShimDelete(const ShimCommand& cmd) {
  auto argv = BaseArgs(cmd);
  argv.insert(argv.end(), {"-bundle", cmd.bundle, "delete"});
  // cwd = bundle, unless it is already gone (the shim then works from -bundle alone).
  struct stat st {};
  std::string cwd = ::stat(cmd.bundle.c_str(), &st) == 0 ? cmd.bundle : "";
  BERTH_ASSIGN_OR_RETURN(
      CommandResult r, RunCommand(argv, ShimEnv(cmd), cwd, "", /*combine=*/false, kDeleteTimeout));
  if (r.status != 0) {
    return Unknown(fmt::format("{}: exit status {}", Trim(r.err), r.status));
  }
  containerd::task::v2::DeleteResponse resp;
  if (!resp.ParseFromString(r.out)) {
    return Unknown(fmt::format("shim {} delete: unreadable response", cmd.binary));
  }
  DeleteResult out{.pid = resp.pid(), .exit_status = resp.exit_status()};
  if (resp.has_exited_at()) {
    out.exited_at_nanos =
        UnixNanos(FromProtoTimestamp(resp.exited_at().seconds(), resp.exited_at().nanos()));
  }
  return out;
}

}  // namespace berth::runtime
