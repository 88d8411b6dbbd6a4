#include "server/server.h"

#include <grpcpp/health_check_service_interface.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"
#include "common/version.h"  // generated
#include "events/exchange.h"
#include "metadata/db.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"
#include "runtime/manager.h"
#include "services/plugins.h"
#include "services/utf8_guard.h"

namespace berth::server {

Status PrepareSocket(const std::string& path) {
  if (path.empty()) {
    return InvalidArgument("grpc address must not be empty");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgument(fmt::format("grpc address {:?} is too long for a unix socket ({} max)",
                                       path, sizeof(sockaddr_un::sun_path) - 1));
  }
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    BERTH_TRY(fs::MkdirAll(path.substr(0, slash), 0711));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Ok() : ErrnoError(errno, "stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPrecondition(fmt::format("grpc address {} exists and is not a socket", path));
  }
  fs::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return ErrnoError(errno, "socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return FailedPrecondition(
        fmt::format("grpc address {} is in use by another running server", path));
  }
  // Nobody listens: a socket left behind by a daemon that died.
  log::L().With("address", path).Info("removing stale socket");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove stale socket " + path);
  }
  return Ok();
}

namespace {

constexpr int kMaxMetadataSize = 16 << 20;

// A listening unix socket at `path` (prepared by PrepareSocket), never wider than 0660.
Result<fs::UniqueFd> ListenUnix(const std::string& path) {
  fs::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) return ErrnoError(errno, "socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  mode_t old_mask = ::umask(0117);
  int rc = ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old_mask);
  if (rc != 0) return ErrnoError(err, "serve grpc: bind " + path);
  if (::listen(fd.Get(), SOMAXCONN) != 0) return ErrnoError(errno, "serve grpc: listen " + path);
  return fd;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const Config& config,
                                              const plugin::Registry& registry) {
  BERTH_TRY(fs::MkdirAll(config.root, 0711));
  BERTH_TRY(fs::EnsureDir(config.root, 0711));
  BERTH_TRY(fs::MkdirAll(config.state, 0711));
  BERTH_TRY(fs::EnsureDir(config.state, 0711));
  auto lock = fs::FileLock::TryAcquire(config.root + "/berthd.lock");
  if (!lock) {
    if (lock.error().Is(Errc::kUnavailable)) {
      return FailedPrecondition(
          fmt::format("root {} is in use by another berthd (lock {}/berthd.lock is held)",
                      config.root, config.root));
    }
    return std::move(lock).error();
  }
  std::unique_ptr<Server> server(new Server(config, std::move(*lock)));

  plugin::InitOptions opts{.root = config.root,
                           .state = config.state,
                           .grpc_address = config.grpc.address,
                           .ttrpc_address = config.TtrpcAddress(),
                           .plugin_config = config.plugins,
                           .disabled = config.disabled_plugins,
                           .required = config.required_plugins};
  BERTH_ASSIGN_OR_RETURN(server->plugins_, registry.InitAll(opts));

  BERTH_TRY(PrepareSocket(config.grpc.address));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // With the guard, no listening port: it accepts on the socket and hands gRPC each client
  // (h2_guard.h). Without it, gRPC makes the socket: the umask keeps it from ever being wider
  // than 0660 before the chmod below.
  if (!config.grpc.h2_guard) {
    builder.AddListeningPort("unix:" + config.grpc.address, grpc::InsecureServerCredentials());
  }
  builder.SetMaxReceiveMessageSize(config.grpc.max_recv_message_size);
  builder.SetMaxSendMessageSize(config.grpc.max_send_message_size);
  // Request metadata up to containerd's limit (Go's 16 MiB header list), not gRPC's 8 KiB: a
  // large namespace header reaches the services' own validation and its InvalidArgument.
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataSize);
  // Requests with invalid UTF-8 in a string field: found as they arrive, refused by the
  // services (services/utf8_guard.h).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(services::NewUtf8GuardFactory());
  creators.push_back(server->calls_->NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(creators));
  // Advertised, so clients queue their streams rather than run into the guard's disconnect.
  H2GuardLimits limits;
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(limits.max_open_streams));
  for (const auto& [id, service] : server->plugins_->GetAll<grpc::Service>(plugin::kGrpc)) {
    builder.RegisterService(service);
  }
  for (const auto& [id, set] : server->plugins_->GetAll<services::GrpcServices>(plugin::kGrpc)) {
    for (const auto& service : set->services) builder.RegisterService(service.get());
  }
  mode_t old_mask = ::umask(0117);
  server->grpc_ = builder.BuildAndStart();
  ::umask(old_mask);
  if (!server->grpc_) {
    return Unknown(fmt::format("serve grpc on {}: failed to start", config.grpc.address));
  }
  if (config.grpc.h2_guard) {
    BERTH_ASSIGN_OR_RETURN(auto listener, ListenUnix(config.grpc.address));
    BERTH_ASSIGN_OR_RETURN(server->guard_,
                           H2Guard::Start(std::move(listener), *server->grpc_, limits));
  }
  if (::chmod(config.grpc.address.c_str(), 0660) != 0) {
    return ErrnoError(errno, "chmod " + config.grpc.address);
  }
  if (::chown(config.grpc.address.c_str(), config.grpc.uid, config.grpc.gid) != 0) {
    return ErrnoError(errno, "chown " + config.grpc.address);
  }
  log::L().With("address", config.grpc.address).Info("serving...");
  // The ttrpc endpoint where shims forward their events (containerd serves it at
  // <grpc address>.ttrpc).
  if (auto* exchange = server->plugins_->Get<events::Exchange>(plugin::kEvent)) {
    BERTH_ASSIGN_OR_RETURN(server->ttrpc_,
                           services::TtrpcEndpoint::Start(config.TtrpcAddress(), *exchange));
  }
  return server;
}

void Server::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // Shims stop reaching the exchange before it shuts down.
  if (ttrpc_) ttrpc_->Shutdown();
  // End event subscriptions first: their streams never finish on their own.
  if (plugins_) {
    if (auto* exchange = plugins_->Get<events::Exchange>(plugin::kEvent)) exchange->Shutdown();
  }
  if (guard_) guard_->StopAccepting();
  if (grpc_) {
    // Give in-flight calls a moment; remaining streams are cancelled.
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_->Wait();
  }
  if (guard_) guard_->Shutdown();
  if (grpc_) ::unlink(config_.grpc.address.c_str());
}

Server::~Server() { Shutdown(); }

namespace {

// A copy of `t` with the values of keys that name credentials (a registry's password, auth,
// identitytoken, ...) replaced, for a dump that goes to the log.
toml::table Redacted(const toml::table& t) {
  toml::table out;
  for (const auto& [key, node] : t) {
    std::string k(key.str());
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
    const bool secret =
        k.find("password") != std::string::npos || k.find("auth") != std::string::npos ||
        k.find("token") != std::string::npos || k.find("secret") != std::string::npos;
    if (const auto* sub = node.as_table()) {
      out.insert(key, Redacted(*sub));
    } else if (secret && node.is_string()) {
      out.insert(key, "<redacted>");
    } else if (const auto* arr = node.as_array()) {
      toml::array a;
      for (const auto& item : *arr) {
        if (const auto* st = item.as_table()) {
          a.push_back(Redacted(*st));
        } else {
          a.push_back(item);
        }
      }
      out.insert(key, std::move(a));
    } else {
      out.insert(key, node);
    }
  }
  return out;
}

}  // namespace

std::string Server::DumpState() const {
  const Timestamp now = Now();
  std::string out = "=== BEGIN berthd state dump ===\n";
  out += fmt::format("berthd {} {}, pid {}, up {}, log level {}\n", kVersion, kRevision, ::getpid(),
                     FormatAge(now - started_), log::LevelName(log::GetLevel()));

  const auto calls = calls_->InFlight();
  out += fmt::format("\ngRPC calls in flight ({}), oldest first:\n", calls.size());
  for (const auto& c : calls) {
    out += fmt::format("  {:>10}  {}  namespace={}\n", FormatAge(now - c.started), c.method,
                       c.ns.empty() ? "-" : c.ns);
  }

  const auto threads = ThreadLines();
  out += fmt::format("\nthreads ({}): tid name state wait-channel\n", threads.size());
  for (const auto& line : threads) out += "  " + line + "\n";

  if (auto* tasks = plugins_ ? plugins_->Get<runtime::TaskManager>(plugin::kRuntimeV2) : nullptr) {
    const auto list = tasks->List(Context{});
    out += fmt::format("\ntasks ({}): namespace/id init-pid\n", list.size());
    for (const auto& t : list) {
      out += fmt::format("  {}/{} {}{}\n", t->Namespace(), t->Id(), t->Pid(),
                         t->Closed() ? " (shim connection lost)" : "");
    }
  }

  if (auto* db = plugins_ ? plugins_->Get<metadata::Db>(plugin::kMetadata) : nullptr) {
    metadata::NamespaceStore namespaces(*db);
    metadata::LeaseStore leases(*db);
    std::string rows;
    size_t n = 0;
    for (const auto& ns : namespaces.List().value_or(std::vector<std::string>{})) {
      auto list = leases.List(Context{.ns = ns}, {});
      if (!list) {
        rows += fmt::format("  {}: {}\n", ns, list.error().ToString());
        continue;
      }
      for (const auto& l : *list) {
        ++n;
        rows += fmt::format("  {}/{} created {}\n", ns, l.id, FormatRfc3339Nano(l.created_at));
      }
    }
    out += fmt::format("\nleases ({}): namespace/id\n", n) + rows;
  }

  Config shown = config_;
  for (auto& [id, table] : shown.plugins) table = Redacted(table);
  std::string toml = shown.ToToml();
  out += "\nconfig as loaded:\n";
  size_t start = 0;
  while (start < toml.size()) {
    size_t end = toml.find('\n', start);
    if (end == std::string::npos) end = toml.size();
    out += "  " + toml.substr(start, end - start) + "\n";
    start = end + 1;
  }
  out += "=== END berthd state dump ===\n";
  return out;
}

std::string DefaultConfigToml(const plugin::Registry& registry) {
  Config c;
  for (const auto& r : registry.All()) {
    if (r->config_defaults.empty()) continue;
    try {
      c.plugins.emplace(r->Uri(), toml::parse(r->config_defaults));
    } catch (const toml::parse_error& e) {
      BERTH_CHECK(false,
                  "bad default config of plugin " + r->Uri() + ": " + std::string(e.description()));
    }
  }
  return c.ToToml();
}

}  // namespace berth::server
