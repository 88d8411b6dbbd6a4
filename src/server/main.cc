// berthd: the daemon. Flags as containerd's: --config/-c, --address/-a, --root, --state,
// --log-level/-l; `berthd config default` prints the full default config.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/version.h"  // generated
#include "server/builtins.h"
#include "server/config.h"
#include "server/server.h"

namespace {

using berth::Result;
using berth::server::Config;

struct Flags {
  std::string config_path = berth::server::kDefaultConfigPath;
  bool config_set = false;
  std::string address;
  std::string root;
  std::string state;
  std::string log_level;
};

Result<Config> LoadConfig(const Flags& flags) {
  Config config;
  struct stat st {};
  if (flags.config_set || ::stat(flags.config_path.c_str(), &st) == 0) {
    // An explicit --config must exist; the default path is optional.
    BERTH_ASSIGN_OR_RETURN(config, Config::Load(flags.config_path));
  }
  if (!flags.address.empty()) config.grpc.address = flags.address;
  if (!flags.root.empty()) config.root = flags.root;
  if (!flags.state.empty()) config.state = flags.state;
  if (!flags.log_level.empty()) config.debug.level = flags.log_level;
  return config;
}

int Fail(const berth::Error& error) {
  std::fprintf(stderr, "berthd: %s\n", error.ToString().c_str());
  return 1;
}

// systemd's readiness protocol (Type=notify, berthd.service): a datagram to $NOTIFY_SOCKET as
// sd_notify(3) sends it. The variable is taken out of the environment at start, so that no shim
// or runc inherits it (runc would wait for the container to notify).
class SystemdNotifier {
 public:
  SystemdNotifier() {
    if (const char* p = std::getenv("NOTIFY_SOCKET"); p != nullptr) {
      path_ = p;
      ::unsetenv("NOTIFY_SOCKET");
    }
  }
  void Notify(std::string_view state) const {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path_.empty() || (path_[0] != '/' && path_[0] != '@') ||
        path_.size() >= sizeof(sa.sun_path)) {
      return;
    }
    std::memcpy(sa.sun_path, path_.data(), path_.size());
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // an abstract socket
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
    if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa),
                 len) < 0) {
      berth::log::L().With("socket", path_).Warn("cannot notify systemd");
    }
    ::close(fd);
  }

 private:
  std::string path_;
};

// SIGUSR1, as containerd's dump of its goroutine stacks: the dump goes to the log and to a file
// in the state dir, whose path is logged.
void DumpState(const berth::server::Server& server, const std::string& state_dir) {
  const std::string dump = server.DumpState();
  berth::log::L().Info(dump);
  const std::string path = fmt::format("{}/berthd.{}.state.log", state_dir, ::time(nullptr));
  if (auto st = berth::fs::WriteFileAtomic(path, dump, 0600); !st) {
    berth::log::L().WithError(st.error()).Warn("cannot write the state dump to a file");
    return;
  }
  berth::log::L().With("path", path).Info("state dump written");
}

int Serve(const Flags& flags) {
  const SystemdNotifier systemd;
  auto config = LoadConfig(flags);
  if (!config) return Fail(config.error());
  auto level = berth::log::ParseLevel(config->debug.level);
  if (!level) return Fail(level.error());
  berth::log::SetLevel(*level);

  // Signals are taken synchronously by this thread; every thread gRPC starts inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);  // dump the state (server/debug_state.h)
  sigaddset(&set, SIGHUP);   // ignored: the config is read once, the log is stderr
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  berth::log::L()
      .With("version", berth::kVersion)
      .With("revision", berth::kRevision)
      .Info("starting berthd");
  berth::plugin::Registry registry;
  berth::server::RegisterBuiltins(registry);
  if (auto st = berth::server::RegisterProxyPlugins(registry, config->proxy_plugins); !st) {
    return Fail(st.error());
  }
  auto server = berth::server::Server::Start(*config, registry);
  if (!server) {
    berth::log::L().WithError(server.error()).Error("berthd failed to start");
    return Fail(server.error());
  }
  berth::log::L().Info("berthd successfully booted");
  systemd.Notify("READY=1");
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && (sig == SIGUSR1 || sig == SIGHUP)) {
    if (sig == SIGHUP) {
      berth::log::L().Info("received SIGHUP: ignored (berthd reads its config only at start)");
    } else {
      DumpState(**server, config->state);
    }
  }
  berth::log::L()
      .With("signal", sig == SIGTERM ? "terminated" : "interrupt")
      .Info("received signal, shutting down");
  systemd.Notify("STOPPING=1");
  (*server)->Shutdown();
  server->reset();
  berth::log::L().Info("berthd stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berthd: a container runtime daemon speaking containerd's API"};
  app.set_version_flag("-v,--version",
                       std::string("berthd ") + berth::kVersion + " " + berth::kRevision);
  Flags flags;
  auto* config_opt =
      app.add_option("-c,--config", flags.config_path, "path to the configuration file")
          ->capture_default_str();
  app.add_option("-a,--address", flags.address, "address for berthd's GRPC server");
  app.add_option("--root", flags.root, "berthd root directory");
  app.add_option("--state", flags.state, "berthd state directory");
  app.add_option("-l,--log-level", flags.log_level,
                 "set the logging level [trace, debug, info, warn, error, fatal, panic]");

  auto* config_cmd = app.add_subcommand("config", "information on the berthd config");
  auto* config_default =
      config_cmd->add_subcommand("default", "see the output of the default config");
  auto* config_dump = config_cmd->add_subcommand("dump", "see the output of the final main config");
  config_cmd->require_subcommand(1);

  CLI11_PARSE(app, argc, argv);
  flags.config_set = config_opt->count() > 0;

  if (config_default->parsed()) {
    berth::plugin::Registry registry;
    berth::server::RegisterBuiltins(registry);
    std::cout << berth::server::DefaultConfigToml(registry);
    return 0;
  }
  if (config_dump->parsed()) {
    auto config = LoadConfig(flags);
    if (!config) return Fail(config.error());
    std::cout << config->ToToml();
    return 0;
  }
  return Serve(flags);
}
