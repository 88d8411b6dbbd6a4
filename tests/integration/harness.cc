#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

extern char** environ;

namespace berth::testing {

// ctr and berth read their default namespace from CONTAINERD_NAMESPACE: one set in the shell
// that runs the suite would leak into every child. Tests name their namespaces themselves.
[[maybe_unused]] const bool kNoAmbientNamespace = (::unsetenv("CONTAINERD_NAMESPACE"), true);
namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for pid up to `timeout`; returns its decoded status or nullopt.
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeStatus(status);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// argv run inside network namespace `netns` (nsenter --net) when one is given.
std::vector<std::string> InNetns(const std::string& netns, std::vector<std::string> argv) {
  if (netns.empty()) return argv;
  argv.insert(argv.begin(), {"nsenter", "--net=" + netns, "--"});
  return argv;
}

}  // namespace

std::string BinPath(const std::string& name) {
  const char* dir = std::getenv("BERTH_BIN_DIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : BERTH_BIN_DIR) + "/" + name;
}

std::string ReadText(const std::string& path) {
  auto r = fs::ReadFile(path);
  return r ? *r : std::string();
}

RunResult Exec(const std::vector<std::string>& argv, const std::string& input,
               std::chrono::seconds timeout) {
  RunResult res;
  int in[2];
  int out[2];
  int err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    res.err = "pipe failed";
    return res;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    res.err = "spawn " + argv[0] + ": " + std::strerror(rc);
    return res;
  }
  // Feed stdin, then close it.
  size_t off = 0;
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  bool in_open = true;
  if (input.empty()) {
    ::close(in[1]);
    in_open = false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    struct pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out[0], POLLIN, 0};
    if (err_open) fds[n++] = {err[0], POLLIN, 0};
    if (in_open) fds[n++] = {in[1], POLLOUT, 0};
    int pr = ::poll(fds, n, 100);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      res.err += "\n[harness: killed after timeout]";
      break;
    }
    if (pr <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in[1]) {
        ssize_t w = ::write(in[1], input.data() + off, input.size() - off);
        if (w > 0) off += static_cast<size_t>(w);
        if (w < 0 || off == input.size()) {
          ::close(in[1]);
          in_open = false;
        }
        continue;
      }
      char buf[8192];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r <= 0) {
        if (fds[i].fd == out[0])
          out_open = false;
        else
          err_open = false;
        continue;
      }
      (fds[i].fd == out[0] ? res.out : res.err).append(buf, static_cast<size_t>(r));
    }
  }
  if (in_open) ::close(in[1]);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  res.exit_code = DecodeStatus(status);
  return res;
}

std::unique_ptr<Background> Background::Start(const std::vector<std::string>& argv,
                                              const std::string& out_path) {
  ::signal(SIGPIPE, SIG_IGN);  // a child that died must not kill the test through its pipe
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return nullptr;
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return nullptr;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in[0], 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out);
  if (pid < 0) {
    ::close(in[1]);
    return nullptr;
  }
  return std::unique_ptr<Background>(new Background(pid, in[1]));
}

Background::~Background() {
  CloseStdin();
  Kill();
}

bool Background::Write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(stdin_fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Background::CloseStdin() {
  if (stdin_fd_ >= 0) {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

int Background::Wait(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  auto status = WaitFor(pid_, timeout);
  if (!status) return -1;
  pid_ = -1;
  return *status;
}

void Background::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  WaitFor(pid_, std::chrono::seconds(15));
  pid_ = -1;
}

std::unique_ptr<Watch> Watch::Start(const std::vector<std::string>& argv) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return nullptr;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return nullptr;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(devnull);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    return nullptr;
  }
  return std::unique_ptr<Watch>(new Watch(pid, out[0], err[0]));
}

Watch::~Watch() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  reader_.join();
  ::close(out_fd_);
  ::close(err_fd_);
}

// Waits until stdout contains `text`; false if the output ended or `timeout` passed first.
bool Watch::WaitFor(const std::string& text, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return out_.find(text) != std::string::npos || eof_;
  }) && out_.find(text) != std::string::npos;
}

// Waits for the exit (up to `timeout`): its status (128+N for signal N), or nullopt.
std::optional<int> Watch::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_;
}

std::string Watch::Out() {
  std::lock_guard lock(mu_);
  return out_;
}
std::string Watch::Err() {
  std::lock_guard lock(mu_);
  return err_;
}

Watch::Watch(pid_t pid, int out_fd, int err_fd) : pid_(pid), out_fd_(out_fd), err_fd_(err_fd) {
  reader_ = std::thread([this] { Read(); });
}

void Watch::Read() {
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    pollfd fds[2] = {{out_open ? out_fd_ : -1, POLLIN, 0}, {err_open ? err_fd_ : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      std::lock_guard lock(mu_);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
      }
      cv_.notify_all();
    }
  }
  std::lock_guard lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

std::string Fixtures() {
  static const std::string dir = [] {
    std::string out = std::string(BERTH_BUILD_DIR) + "/fixtures";
    auto r = Exec(
        {std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/build-images.sh", out, "--big-mib", "16"},
        "", std::chrono::seconds(600));
    if (r.exit_code != 0) {
      std::fprintf(stderr, "building fixtures failed:\n%s\n%s\n", r.out.c_str(), r.err.c_str());
      return std::string();
    }
    return out;
  }();
  return dir;
}

std::unique_ptr<RegistryProxy> RegistryProxy::Start(const std::string& upstream,
                                                    const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"python3",
                                   std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/regproxy.py",
                                   "--upstream", upstream};
  argv.insert(argv.end(), args.begin(), args.end());
  auto w = Watch::Start(argv);
  if (!w || !w->WaitFor("\n")) {  // it prints its port once it listens
    if (w) std::fprintf(stderr, "regproxy: %s\n", w->Err().c_str());
    return nullptr;
  }
  std::string out = w->Out();
  std::string addr = "127.0.0.1:" + out.substr(0, out.find('\n'));
  return std::unique_ptr<RegistryProxy>(new RegistryProxy(std::move(w), std::move(addr)));
}

std::unique_ptr<Registry> Registry::Start() { return Start(Options{}); }

std::unique_ptr<Registry> Registry::Start(const Options& options) {
  std::string fixtures = Fixtures();
  if (fixtures.empty()) return nullptr;
  auto dir = fs::TempDir::Create("berth-registry-");
  if (!dir) return nullptr;
  std::string script = std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/registry.sh";
  std::vector<std::string> start_argv = {script, "start", dir->Path()};
  if (!options.htpasswd.empty()) {
    start_argv.insert(start_argv.end(), {"--htpasswd", options.htpasswd});
  }
  if (!options.tls_cert.empty()) {
    start_argv.insert(start_argv.end(), {"--tls", options.tls_cert, options.tls_key});
  }
  auto start = Exec(InNetns(options.netns, start_argv), "", std::chrono::seconds(60));
  if (start.exit_code != 0) {
    std::fprintf(stderr, "registry start failed: %s\n", start.err.c_str());
    return nullptr;
  }
  std::string addr = start.out;
  while (!addr.empty() && (addr.back() == '\n' || addr.back() == ' ')) addr.pop_back();
  std::unique_ptr<Registry> reg(new Registry(std::move(*dir), addr, options.netns));
  std::vector<std::string> push_argv = {script, "push", reg->dir_.Path(), fixtures + "/oci"};
  push_argv.insert(push_argv.end(), options.tags.begin(), options.tags.end());
  if (!options.creds.empty()) push_argv.insert(push_argv.end(), {"--creds", options.creds});
  auto push = Exec(InNetns(options.netns, push_argv), "", std::chrono::seconds(300));
  if (push.exit_code != 0) {
    std::fprintf(stderr, "registry push failed: %s\n", push.err.c_str());
    return nullptr;
  }
  return reg;
}

bool Registry::Push(const std::string& layout) {
  auto push = Exec(InNetns(netns_, {std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/registry.sh",
                                    "push", dir_.Path(), layout}),
                   "", std::chrono::seconds(300));
  if (push.exit_code != 0) std::fprintf(stderr, "registry push failed: %s\n", push.err.c_str());
  return push.exit_code == 0;
}

Registry::~Registry() {
  Exec({std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/registry.sh", "stop", dir_.Path()}, "",
       std::chrono::seconds(60));
}

std::unique_ptr<Daemon> Daemon::Create(Options options) {
  auto dir = fs::TempDir::Create("berth-it-");
  if (!dir) return nullptr;
  std::unique_ptr<Daemon> d(new Daemon(std::move(*dir), std::move(options)));
  std::string config = "version = 2\nroot = \"" + d->Root() + "\"\nstate = \"" + d->State() +
                       "\"\n[grpc]\n  address = \"" + d->Socket() + "\"\n" +
                       d->options_.extra_config;
  // The CRI plugin of every test daemon keeps its CNI state private (containerd's defaults are
  // the host's /etc/cni/net.d and /var/lib/cni); CRI tests write their own section.
  if (d->options_.extra_config.find("io.containerd.grpc.v1.cri") == std::string::npos) {
    config +=
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  netns_mounts_under_state_dir = true\n"
        "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    conf_dir = \"" +
        d->Dir() + "/cni/net.d\"\n    cache_dir = \"" + d->Dir() + "/cni/cache\"\n";
  }
  if (!fs::WriteFileAtomic(d->ConfigPath(), config)) return nullptr;
  return d;
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    if (Stop() != 0) {
      // Already reported by the test if it mattered.
    }
  }
}

bool Daemon::Start() {
  std::string log = Dir() + "/berthd.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int netns = -1;
  if (!options_.netns.empty()) {
    netns = ::open(options_.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns < 0) {
      std::fprintf(stderr, "open netns %s: %s\n", options_.netns.c_str(), std::strerror(errno));
      ::close(fd);
      ::close(devnull);
      return false;
    }
  }
  std::string bin = BinPath("berthd");
  std::vector<std::string> argv = {bin, "--config", ConfigPath(), "--log-level", "debug"};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings = options_.env;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t parent = ::getpid();
  // fork + exec (only async-signal-safe calls in the child) so the daemon gets a parent-death
  // signal: if this test process dies without running destructors, its berthd dies with it.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (netns >= 0 && ::setns(netns, CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(devnull, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(bin.c_str(), args.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  ::close(devnull);
  if (netns >= 0) ::close(netns);
  if (pid < 0) return false;
  pid_ = pid;
  return WaitReady();
}

bool Daemon::WaitReady() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (::access(Socket().c_str(), F_OK) == 0) {
      auto channel = grpc::CreateChannel("unix:" + Socket(), grpc::InsecureChannelCredentials());
      grpc::GenericStub stub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      grpc::Slice empty_slice("", 0);
      grpc::ByteBuffer req(&empty_slice, 1);
      grpc::ByteBuffer resp;
      grpc::Status st;
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      stub.UnaryCall(&ctx, "/containerd.services.version.v1.Version/Version", {}, &req, &resp,
                     [&](grpc::Status s) {
                       std::lock_guard lock(mu);
                       st = std::move(s);
                       done = true;
                       cv.notify_one();
                     });
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done; });
      if (st.ok()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int Daemon::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto status = WaitFor(pid_, std::chrono::seconds(15));
  if (!status) {
    ::kill(pid_, SIGKILL);
    WaitFor(pid_, std::chrono::seconds(15));
    pid_ = -1;
    return -1;
  }
  pid_ = -1;
  return *status;
}

void Daemon::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  WaitFor(pid_, std::chrono::seconds(15));
  pid_ = -1;
}

RunResult Daemon::Ctr(const std::vector<std::string>& args, const std::string& ns) const {
  std::vector<std::string> argv = {"ctr", "-a", Socket()};
  if (!ns.empty()) {
    argv.push_back("-n");
    argv.push_back(ns);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return Exec(argv);
}

RunResult Daemon::Berth(const std::vector<std::string>& args, const std::string& ns) const {
  std::vector<std::string> argv = {BinPath("berth"), "-a", Socket()};
  if (!ns.empty()) {
    argv.push_back("-n");
    argv.push_back(ns);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return Exec(argv);
}

}  // namespace berth::testing
