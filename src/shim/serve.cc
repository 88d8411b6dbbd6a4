// The serving shim: one io_context thread for the ttrpc server, the reaper, stdio copies, OOM
// watches and event publishing.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "common/fs.h"
#include "common/log.h"
#include "shim/cgroups.h"
#include "shim/events.h"
#include "shim/manager.h"
#include "shim/service.h"
#include "shim/spawn.h"
#include "ttrpc/ttrpc.h"

namespace berth::shim {
namespace {

// How long a shutting-down shim may spend delivering its last events and answering calls.
constexpr std::chrono::seconds kExitGrace(5);

// stderr -> the bundle's `log` FIFO, which the daemon reads (it holds it open read-write). Opened
// non-blocking so a missing reader cannot hang us; then made blocking again.
void OpenLog() {
  int fd = ::open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  ::dup2(fd, 2);
  ::close(fd);
}

std::string SocketFromAddressFile() {
  auto text = fs::ReadFile("address");
  if (!text) {
    return "";
  }
  std::string a = *text;
  while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) {
    a.pop_back();
  }
  constexpr std::string_view kUnix = "unix://";
  if (a.rfind(kUnix, 0) == 0) {
    a = a.substr(kUnix.size());
  }
  return a;
}

}  // namespace

int Serve(const Flags& flags) {
  OpenLog();
  if (flags.debug) {
    log::SetLevel(log::Level::kDebug);
  }
  auto logger = log::L().With("namespace", flags.ns).With("id", flags.id);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    logger.With("error", std::strerror(errno)).Error("set child subreaper");
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);

  fs::UniqueFd listener;
  if (!flags.socket.empty()) {
    auto l = ttrpc::Server::Listen(flags.socket);
    if (!l) {
      logger.WithError(l.error()).Error("listen");
      return 1;
    }
    listener = std::move(*l);
  } else {
    listener.Reset(3);
    ::fcntl(3, F_SETFD, FD_CLOEXEC);
  }

  asio::io_context io(1);
  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  Publisher publisher(io, ttrpc_address != nullptr ? ttrpc_address : "", flags.ns);
  ttrpc::Server server(io);
  bool exiting = false;
  asio::steady_timer exit_timer(io);
  std::string socket_path = SocketFromAddressFile();
  if (socket_path.empty()) {
    socket_path = flags.socket;
  }
  std::function<void()> shutdown = [&] {
    if (exiting) {
      return;
    }
    exiting = true;
    logger.Info("shutting down");
    // No new connections from here on; the file goes first so a crash later cannot leak it,
    // and before the Shutdown rpc is answered, so it is gone when the daemon's Delete returns.
    if (!socket_path.empty()) {
      ::unlink(socket_path.c_str());
    }
    // After the answer: events first (the daemon waits for /tasks/delete), then the
    // connections. Bounded: a daemon that is gone or a Wait that never ends must not keep the
    // shim alive.
    asio::post(io, [&] {
      exit_timer.expires_after(kExitGrace);
      exit_timer.async_wait([&](const asio::error_code& ec) {
        if (!ec) {
          logger.Warn("shutdown grace period over: exiting");
          io.stop();
        }
      });
      publisher.Flush([&] { server.Shutdown([&] { io.stop(); }); });
    });
  };
  // The first container's bundle is the working directory (StartShim spawns us there).
  std::error_code cwd_ec;
  std::string bundle = std::filesystem::current_path(cwd_ec).string();
  ServiceConfig config{
      .ns = flags.ns, .runc_root = RuncRootFor(bundle), .cgroup_mode = DetectCgroupMode()};
  Service service(io, config, publisher, shutdown);
  service.Register(server);
  if (auto st = server.Serve(std::move(listener)); !st) {
    logger.WithError(st.error()).Error("serve");
    return 1;
  }

  asio::signal_set signals(io, SIGCHLD, SIGTERM, SIGINT);
  std::function<void(const asio::error_code&, int)> on_signal = [&](const asio::error_code& ec,
                                                                    int sig) {
    if (ec) {
      return;
    }
    if (sig == SIGCHLD) {
      int status = 0;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        service.OnExit(pid, ExitCodeFromWaitStatus(status));
      }
    } else {
      logger.With("signal", sig).Info("exit signal");
      shutdown();
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  // A child may have exited before the signal set existed.
  asio::post(io, [&] { on_signal({}, SIGCHLD); });

  logger.Debug("serving task api");
  io.run();
  if (!socket_path.empty()) {
    ::unlink(socket_path.c_str());
  }
  return 0;
}

}  // namespace berth::shim
