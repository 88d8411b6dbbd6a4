// Our Client against a real Go ttrpc server: Debian's containerd-shim-runc-v2 (containerd
// 1.6.20, ttrpc v1.1.1), started the way containerd starts it, with no container.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc {
namespace {

using namespace std::chrono_literals;
namespace task = containerd::task::v2;

constexpr std::string_view kTask = "containerd.task.v2.Task";
constexpr const char* kShim = "/usr/bin/containerd-shim-runc-v2";

// Runs argv with cwd `dir`, returns (exit status, stdout+stderr).
std::pair<int, std::string> RunIn(const std::string& dir, std::vector<std::string> argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return {-1, std::strerror(errno)};
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    if (::chdir(dir.c_str()) != 0) {
      ::_exit(126);
    }
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The pid of the serving shim started with `-id <id>` (ids are unique per test run), or 0.
pid_t FindShim(const std::string& id) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) {
      continue;
    }
    std::ifstream f(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // argv, NUL-separated: the serving shim is the one without the "start" argument.
    std::vector<std::string> args;
    for (size_t pos = 0; pos < cmdline.size();) {
      size_t end = cmdline.find('\0', pos);
      if (end == std::string::npos) end = cmdline.size();
      args.push_back(cmdline.substr(pos, end - pos));
      pos = end + 1;
    }
    auto has = [&](std::string_view a) {
      return std::find(args.begin(), args.end(), a) != args.end();
    };
    if (!args.empty() && args[0] == kShim && has(id) && !has("start")) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return 0;
}

// True while `pid` is a live (not zombie) containerd-shim-runc-v2.
bool ShimAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) {
    return false;
  }
  auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) {
    return false;
  }
  char state = line[close_paren + 2];
  return state != 'Z' && state != 'X' && line.find("(containerd-shim") != std::string::npos;
}

// Kills the shim (by its pid) and removes its socket, whatever happened in the test.
struct ShimCleanup {
  pid_t pid = 0;
  std::string socket;
  ~ShimCleanup() {
    if (pid > 0 && ShimAlive(pid)) {
      ::kill(pid, SIGKILL);
    }
    if (!socket.empty()) {
      ::unlink(socket.c_str());
    }
  }
};

TEST(Interop, GoShimRuncV2) {
  // The Go ttrpc peer this test talks to.
  ASSERT_EQ(::access(kShim, X_OK), 0)
      << kShim << " is missing (Debian package containerd): run make deps";
  if (::geteuid() != 0) {
    GTEST_SKIP()
        << "containerd-shim-runc-v2 creates its socket under /run/containerd/s: needs root";
  }
  auto bundle = fs::TempDir::Create("berth-ttrpc-interop-");
  ASSERT_TRUE(bundle) << bundle.error().ToString();
  const std::string& dir = bundle->Path();
  // The shim reads the bundle's config.json (for grouping annotations) and opens `log` FIFO for
  // writing: give it both, holding the FIFO open for reading as containerd does.
  { std::ofstream(dir + "/config.json") << "{}"; }
  ASSERT_EQ(::mkfifo((dir + "/log").c_str(), 0700), 0) << std::strerror(errno);
  fs::UniqueFd log(::open((dir + "/log").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(log.Valid());

  std::string id = "ttrpc-interop-" + std::to_string(::getpid()) + "-" +
                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  auto [rc, out] = RunIn(dir, {kShim, "-namespace", "berthttrpc", "-id", id, "-address",
                               "/nonexistent.sock", "start"});
  ASSERT_EQ(rc, 0) << out;
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) {
    out.pop_back();
  }
  ASSERT_TRUE(out.starts_with("unix:///run/containerd/s/")) << out;
  ShimCleanup cleanup{.socket = out.substr(std::strlen("unix://"))};
  cleanup.pid = FindShim(id);
  ASSERT_GT(cleanup.pid, 0) << "no serving shim for " << out;

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  struct Joiner {
    asio::io_context& io;
    std::thread& t;
    ~Joiner() {
      io.stop();
      t.join();
    }
  } joiner{io, io_thread};

  auto client = Client::Connect(io, out, 10s);
  ASSERT_TRUE(client) << client.error().ToString();
  std::promise<void> lost;
  (*client)->OnClose([&] { lost.set_value(); });
  Metadata md;
  md.Add(kNamespaceKey, "berthttrpc");

  task::ConnectRequest creq;
  creq.set_id(id);
  auto conn = (*client)->Call<task::ConnectResponse>(kTask, "Connect", creq, md, 10s);
  ASSERT_TRUE(conn) << conn.error().ToString();
  EXPECT_EQ(conn->shim_pid(), static_cast<uint32_t>(cleanup.pid));
  EXPECT_EQ(conn->task_pid(), 0u);

  task::StateRequest sreq;
  sreq.set_id("no-such-container");
  auto state = (*client)->Call<task::StateResponse>(kTask, "State", sreq, md, 10s);
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().Code(), Errc::kNotFound);
  EXPECT_EQ(state.error().What(), "container not created");

  // Go's ttrpc answers an unknown method the way ours does.
  auto unknown = (*client)->Call(kTask, "NoSuchMethod", "", md, 10s);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().Code(), Errc::kNotImplemented);
  EXPECT_EQ(unknown.error().What(), "method NoSuchMethod");

  // Shutdown: with no container the shim exits; its answer may or may not beat the exit.
  task::ShutdownRequest shut;
  shut.set_id(id);
  auto sr = (*client)->Call(kTask, "Shutdown", shut.SerializeAsString(), md, 10s);
  if (!sr) {
    EXPECT_EQ(sr.error().What(), "ttrpc: closed");
  }
  // The shim's exit closes the connection: OnClose runs.
  auto lost_f = lost.get_future();
  ASSERT_EQ(lost_f.wait_for(30s), std::future_status::ready)
      << "the connection did not close within 30 s of the shim's Shutdown";
  EXPECT_TRUE((*client)->Closed());
  for (int i = 0; i < 1000 && ShimAlive(cleanup.pid); ++i) {
    std::this_thread::sleep_for(10ms);  // the exit is under way; wait for the process to go
  }
  EXPECT_FALSE(ShimAlive(cleanup.pid));
}

}  // namespace
}  // namespace berth::ttrpc
