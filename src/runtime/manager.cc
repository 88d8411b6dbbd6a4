#include "runtime/manager.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>
#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/proto_time.h"

namespace berth::runtime {
namespace {

namespace v2 = containerd::task::v2;
using std::chrono::milliseconds;
using std::chrono::seconds;

// containerd's timeouts (io.containerd.timeout.shim.*).
constexpr milliseconds kLoadTimeout = seconds(5);
constexpr milliseconds kCleanupTimeout = seconds(5);
constexpr milliseconds kShutdownTimeout = seconds(3);

// A dead shim cannot remove its own socket, and its `delete` action does not either (neither
// does containerd's). Removes the unix socket named by the bundle's `address` file once nobody
// answers on it (a shim serving other containers of its group still does).
void RemoveStaleShimSocket(const std::string& bundle_path) {
  auto address = fs::ReadFile(bundle_path + "/address");
  if (!address) return;
  std::string path = address->substr(0, address->find('\n'));
  if (path.starts_with("unix://")) path = path.substr(7);
  sockaddr_un addr{.sun_family = AF_UNIX};
  if (!path.starts_with("/") || path.size() >= sizeof(addr.sun_path)) return;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  path.copy(addr.sun_path, path.size());
  fs::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) return;
  if (::connect(fd.Get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno == ECONNREFUSED) {
    ::unlink(path.c_str());
  }
}

struct DirEntry {
  std::string name;
  bool is_dir;
};

Result<std::vector<DirEntry>> ReadDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return ErrnoError(errno, "read dir " + path);
  std::vector<DirEntry> out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    bool is_dir =
        ::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    out.push_back({std::move(name), is_dir});
  }
  ::closedir(d);
  return out;
}

std::string DirOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// The shim group a spec asks for (annotation io.containerd.runc.v2.group, else the CRI's
// io.kubernetes.cri.sandbox-id, as the runc v2 shims group containers); "" if none.
std::string GroupOf(const std::string& spec_json) {
  auto spec = nlohmann::json::parse(spec_json, nullptr, false);
  if (!spec.is_object()) return "";
  auto ann = spec.find("annotations");
  if (ann == spec.end() || !ann->is_object()) return "";
  for (const char* key : {"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"}) {
    auto it = ann->find(key);
    if (it != ann->end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

Status RequireNamespace(const Context& ctx) {
  if (ctx.ns.empty()) return FailedPrecondition("namespace is required");
  return Ok();
}

}  // namespace

TaskManager::TaskManager(ManagerOptions options)
    : options_(std::move(options)),
      resolver_(options_.config.shims, DirOf(options_.daemon_exe),
                ::getenv("PATH") != nullptr ? ::getenv("PATH") : "/usr/sbin:/usr/bin:/sbin:/bin"),
      work_(asio::make_work_guard(io_)) {}

Result<std::unique_ptr<TaskManager>> TaskManager::Open(ManagerOptions options) {
  for (const auto* d : {&options.root, &options.state}) {
    BERTH_TRY(fs::MkdirAll(*d, 0711));
  }
  if (options.daemon_exe.empty()) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) options.daemon_exe.assign(buf, static_cast<size_t>(n));
  }
  std::unique_ptr<TaskManager> m(new TaskManager(std::move(options)));
  m->io_thread_ = std::jthread([io = &m->io_] { io->run(); });
  m->LoadAll();
  return m;
}

TaskManager::~TaskManager() {
  std::map<std::string, std::shared_ptr<Shim>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& [key, shim] : tasks) {
    if (shim) shim->Close();
  }
  tasks.clear();
  cleanup_.join();
  work_.reset();
  io_.stop();
}

ShimCommand TaskManager::CommandFor(const Bundle& bundle, const std::string& binary) const {
  return ShimCommand{.binary = binary,
                     .ns = bundle.Namespace(),
                     .id = bundle.Id(),
                     .bundle = bundle.Path(),
                     .grpc_address = options_.grpc_address,
                     .ttrpc_address = options_.ttrpc_address,
                     .publish_binary = options_.daemon_exe,
                     .debug = options_.debug,
                     .sched_core = options_.config.sched_core};
}

Result<std::shared_ptr<Shim>> TaskManager::Connect(const Bundle& bundle, ShimCommand command,
                                                   const std::string& address,
                                                   std::shared_ptr<LogCopier> log,
                                                   milliseconds dial_timeout) {
  // A socket file that is gone means a dead shim: fail now instead of retrying the dial.
  if (std::string_view a = address; a.starts_with("unix://") || a.starts_with("/")) {
    std::string path(a.starts_with("unix://") ? a.substr(7) : a);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "shim socket " + path);
  }
  if (!log) {
    BERTH_ASSIGN_OR_RETURN(log, LogCopier::Open(io_, bundle.Path() + "/log"));
  }
  auto client = ttrpc::Client::Connect(io_, address, dial_timeout);
  if (!client) {
    log->Close();
    return std::move(client).error().Wrap("connect to shim at " + address);
  }
  auto shim = std::make_shared<Shim>(bundle, std::move(command), *client, std::move(log));
  (*client)->OnClose([this, weak = std::weak_ptr<Shim>(shim)] { OnShimClosed(weak); });
  return shim;
}

void TaskManager::OnShimClosed(const std::weak_ptr<Shim>& weak) {
  asio::post(cleanup_, [this, weak] {
    auto shim = weak.lock();
    if (!shim || !shim->MarkRemoving()) return;  // gone, or being removed by Delete
    bool known;
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find(Key(shim->Namespace(), shim->Id()));
      known = it != tasks_.end() && it->second == shim;
    }
    log::L().With("id", shim->Id()).With("namespace", shim->Namespace()).Info("shim disconnected");
    shim->Close();
    CleanupDeadShim(shim->GetBundle(), shim->Command(), known);
    Remove(shim->Namespace(), shim->Id(), shim.get());
  });
}

void TaskManager::Remove(const std::string& ns, const std::string& id, const Shim* which) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(Key(ns, id));
  if (it != tasks_.end() && it->second.get() == which) tasks_.erase(it);
}

void TaskManager::CleanupDeadShim(const Bundle& bundle, const ShimCommand& command, bool publish) {
  auto entry = log::L().With("id", bundle.Id()).With("namespace", bundle.Namespace());
  entry.Warn("cleaning up after shim disconnected");
  uint32_t pid = 0;
  uint32_t status = 255;
  Timestamp exited_at = Now();
  auto deleted = ShimDelete(command);
  if (deleted) {
    pid = deleted->pid;
    status = deleted->exit_status;
    if (deleted->exited_at_nanos != 0) exited_at = FromUnixNanos(deleted->exited_at_nanos);
  } else {
    entry.WithError(deleted.error()).Warn("failed to clean up after shim disconnected");
  }
  if (publish && options_.publisher != nullptr) {
    Context ctx{.ns = bundle.Namespace()};
    containerd::events::TaskExit exit;
    exit.set_container_id(bundle.Id());
    exit.set_id(bundle.Id());
    exit.set_pid(pid);
    exit.set_exit_status(status);
    SetTimestamp(exited_at, exit.mutable_exited_at());
    if (auto st = options_.publisher->Publish(ctx, "/tasks/exit", exit); !st) {
      entry.WithError(st.error()).Warn("publish /tasks/exit");
    }
    containerd::events::TaskDelete del;
    del.set_container_id(bundle.Id());
    del.set_pid(pid);
    del.set_exit_status(status);
    SetTimestamp(exited_at, del.mutable_exited_at());
    if (auto st = options_.publisher->Publish(ctx, "/tasks/delete", del); !st) {
      entry.WithError(st.error()).Warn("publish /tasks/delete");
    }
  }
  RemoveStaleShimSocket(bundle.Path());
  if (auto st = bundle.Delete(); !st) entry.WithError(st.error()).Error("failed to delete bundle");
}

Result<std::shared_ptr<Task>> TaskManager::Create(const Context& ctx, const std::string& id,
                                                  CreateOpts opts) {
  BERTH_TRY(RequireNamespace(ctx));
  const std::string key = Key(ctx.ns, id);
  {
    std::lock_guard lock(mu_);
    if (tasks_.contains(key)) return AlreadyExists(fmt::format("task {}", id));
    tasks_.emplace(key, nullptr);  // reserved while we create it
  }
  struct Unreserve {
    TaskManager* m;
    std::string key;
    bool armed = true;
    ~Unreserve() {
      if (!armed) return;
      std::lock_guard lock(m->mu_);
      if (auto it = m->tasks_.find(key); it != m->tasks_.end() && it->second == nullptr) {
        m->tasks_.erase(it);
      }
    }
  } unreserve{this, key};
  auto entry = log::L().With("id", id).With("namespace", ctx.ns);

  auto binary = resolver_.Resolve(opts.runtime);
  if (!binary) {
    return std::move(binary).error().Wrap("failed to start shim: failed to resolve runtime path");
  }
  BERTH_ASSIGN_OR_RETURN(Bundle bundle,
                         Bundle::Create(options_.root, options_.state, ctx.ns, id, opts.spec));
  ShimCommand command = CommandFor(bundle, *binary);

  const google::protobuf::Any* topts =
      opts.task_options ? &*opts.task_options
                        : (opts.runtime_options ? &*opts.runtime_options : nullptr);
  // The log FIFO is read before `start` so the shim never blocks opening it.
  auto log = LogCopier::Open(io_, bundle.Path() + "/log");
  if (!log) {
    (void)bundle.Delete();
    return std::move(log).error();
  }
  // A container joining its group's running shim (a pod's container and its sandbox): the
  // shim's `start` would only find that shim's socket and print its address, so connect to it
  // directly (one process spawn less per container). Anything unusual takes the `start` path.
  Result<std::string> address = NotFound("no group shim");
  bool joined = false;
  if (std::string group = GroupOf(opts.spec); !group.empty() && group != id) {
    std::shared_ptr<Shim> leader;
    {
      std::lock_guard lock(mu_);
      if (auto it = tasks_.find(Key(ctx.ns, group)); it != tasks_.end()) leader = it->second;
    }
    if (leader && !leader->Closed() && leader->Command().binary == *binary) {
      if (auto a = fs::ReadFile(leader->GetBundle().Path() + "/address"); a && !a->empty()) {
        std::string addr = a->substr(0, a->find('\n'));
        if (fs::ReplaceFile(bundle.Path() + "/address", addr, 0644)) {
          address = addr;
          joined = true;
        }
      }
    }
  }
  if (!address) {
    address = ShimStart(command, topts ? topts->SerializeAsString() : std::string());
  }
  if (!address) {
    (*log)->Close();
    (void)bundle.Delete();
    return std::move(address).error().Wrap("failed to start shim: start failed");
  }
  if (auto st = fs::ReplaceFile(bundle.Path() + "/shim-binary-path", *binary, 0600); !st) {
    (*log)->Close();
    CleanupDeadShim(bundle, command, false);
    return std::move(st).error();
  }
  auto shim = Connect(bundle, command, *address, *log);
  if (!shim && joined) {
    // The group's shim went away meanwhile: let `start` decide (it starts a new one).
    if (auto started = ShimStart(command, topts ? topts->SerializeAsString() : std::string());
        started) {
      shim = Connect(bundle, command, *started, nullptr);  // the first Connect closed `log`
    }
  }
  if (!shim) {
    CleanupDeadShim(bundle, command, false);
    return std::move(shim).error().Wrap("failed to start shim");
  }

  v2::CreateTaskRequest req;
  req.set_id(id);
  req.set_bundle(bundle.Path());
  for (const auto& m : opts.rootfs) {
    auto* out = req.add_rootfs();
    out->set_type(m.type);
    out->set_source(m.source);
    out->set_target(m.target);
    for (const auto& o : m.options) out->add_options(o);
  }
  req.set_terminal(opts.terminal);
  req.set_stdin(opts.stdin_path);
  req.set_stdout(opts.stdout_path);
  req.set_stderr(opts.stderr_path);
  req.set_checkpoint(opts.checkpoint);
  if (topts) *req.mutable_options() = *topts;

  auto created = (*shim)->Call<v2::CreateTaskResponse>("Create", req);
  uint32_t pid = 0;
  if (created) {
    v2::ConnectRequest creq;
    creq.set_id(id);
    auto connected = (*shim)->Call<v2::ConnectResponse>("Connect", creq);
    if (!connected) {
      created = std::move(connected).error().Wrap("failed to get task pid");
    } else {
      pid = connected->task_pid();
    }
  }
  if (!created) {
    (*shim)->MarkRemoving();
    v2::DeleteRequest dreq;
    dreq.set_id(id);
    auto del = (*shim)->Call<v2::DeleteResponse>("Delete", dreq, kCleanupTimeout);
    if (!del) entry.WithError(del.error()).Debug("delete after failed create");
    v2::ShutdownRequest sreq;
    sreq.set_id(id);
    (void)(*shim)->Call<google::protobuf::Empty>("Shutdown", sreq, kShutdownTimeout);
    (*shim)->Close();
    if (auto st = bundle.Delete(); !st) {
      entry.WithError(st.error()).Error("failed to delete bundle");
    }
    return std::move(created).error().Wrap("failed to create shim task");
  }
  (*shim)->SetPid(pid);
  {
    std::lock_guard lock(mu_);
    tasks_[key] = *shim;
  }
  unreserve.armed = false;
  entry.With("pid", pid).Info("task created");
  return std::shared_ptr<Task>(*shim);
}

Result<std::shared_ptr<Task>> TaskManager::Get(const Context& ctx, const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(Key(ctx.ns, id));
  if (it == tasks_.end() || it->second == nullptr) {
    return NotFound(fmt::format("task {} not found", id));
  }
  return it->second;
}

std::vector<std::shared_ptr<Task>> TaskManager::List(const Context& ctx) const {
  std::vector<std::shared_ptr<Task>> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, shim] : tasks_) {
    if (shim && (ctx.ns.empty() || shim->Namespace() == ctx.ns)) out.push_back(shim);
  }
  return out;
}

Result<Exit> TaskManager::Delete(const Context& ctx, const std::string& id) {
  std::shared_ptr<Shim> shim;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(Key(ctx.ns, id));
    if (it == tasks_.end() || it->second == nullptr) {
      return NotFound(fmt::format("task {} not found", id));
    }
    shim = it->second;
  }
  auto entry = log::L().With("id", id).With("namespace", ctx.ns);
  v2::DeleteRequest req;
  req.set_id(id);
  auto resp = shim->Call<v2::DeleteResponse>("Delete", req);
  bool closed = !resp && shim->Closed();
  if (!resp && !closed && !resp.error().Is(Errc::kNotFound)) {
    return std::move(resp).error();  // e.g. still running: the task stays
  }
  if (!shim->MarkRemoving()) {
    return NotFound(fmt::format("task {} not found", id));  // someone else removes it
  }
  if (closed) {
    // The shim died under us: clean up as for a lost connection, with the events.
    shim->Close();
    CleanupDeadShim(shim->GetBundle(), shim->Command(), true);
    Remove(ctx.ns, id, shim.get());
    return std::move(resp).error();
  }
  // The socket path, read before Shutdown: a shim that decides to exit removes it before it
  // answers (a grouped shim with other tasks keeps it).
  std::string socket;
  if (auto address = fs::ReadFile(shim->GetBundle().Path() + "/address")) {
    socket = address->substr(0, address->find('\n'));
    if (socket.starts_with("unix://")) socket.erase(0, 7);
  }
  v2::ShutdownRequest sreq;
  sreq.set_id(id);
  if (auto st = shim->Call<google::protobuf::Empty>("Shutdown", sreq, kShutdownTimeout);
      !st && !shim->Closed()) {
    entry.WithError(st.error()).Error("failed to shutdown shim task");
  } else if (!socket.empty() && ::access(socket.c_str(), F_OK) != 0) {
    // The shim is exiting: it flushes its events, then closes its connections and exits. Wait
    // (bounded) for our connection to close, so no shim outlives its task's Delete.
    const auto until = std::chrono::steady_clock::now() + kShutdownTimeout;
    while (!shim->Closed() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(2));
    }
    if (!shim->Closed()) entry.Warn("shim still running after shutdown");
  }
  shim->Close();
  if (auto st = shim->GetBundle().Delete(); !st) {
    entry.WithError(st.error()).Error("failed to delete bundle");
  }
  Remove(ctx.ns, id, shim.get());
  if (!resp) return std::move(resp).error();
  Exit exit{.pid = resp->pid(), .status = resp->exit_status()};
  exit.exited_at = FromProtoTimestamp(resp->exited_at().seconds(), resp->exited_at().nanos());
  return exit;
}

void TaskManager::LoadAll() {
  auto namespaces = ReadDir(options_.state);
  if (!namespaces) {
    log::L().WithError(namespaces.error()).Error("loading tasks");
    return;
  }
  for (const auto& nsd : *namespaces) {
    if (!nsd.is_dir || nsd.name.starts_with('.')) continue;
    LoadNamespace(nsd.name);
  }
}

void TaskManager::LoadNamespace(const std::string& ns) {
  auto entries = ReadDir(options_.state + "/" + ns);
  if (!entries) {
    log::L().With("namespace", ns).WithError(entries.error()).Error("loading tasks in namespace");
    return;
  }
  Context ctx{.ns = ns};
  for (const auto& e : *entries) {
    if (!e.is_dir || e.name.starts_with('.')) continue;
    const std::string& id = e.name;
    auto entry = log::L().With("id", id).With("namespace", ns);
    Bundle bundle = Bundle::Load(options_.state, ns, id);
    auto files = ReadDir(bundle.Path());
    if (!files || files->empty()) {
      if (!files) entry.WithError(files.error()).Error("read bundle");
      (void)bundle.Delete();
      continue;
    }
    std::string runtime;
    if (auto data = fs::ReadFile(bundle.Path() + "/shim-binary-path"); data) {
      runtime = *data;
    }
    if (runtime.empty()) {
      auto name = options_.container_runtime ? options_.container_runtime(ctx, id)
                                             : Result<std::string>(NotFound("no container store"));
      if (!name) {
        entry.WithError(name.error()).Error("loading container");
        if (auto st = bundle.Delete(); !st) entry.WithError(st.error()).Error("delete bundle");
        continue;
      }
      runtime = *name;
    }
    auto binary = resolver_.Resolve(runtime);
    if (!binary) {
      entry.WithError(binary.error()).Error("failed to resolve runtime path");
      (void)bundle.Delete();
      continue;
    }
    ShimCommand command = CommandFor(bundle, *binary);
    auto address = fs::ReadFile(bundle.Path() + "/address");
    Result<std::shared_ptr<Shim>> shim =
        address ? Connect(bundle, command, std::string(address->substr(0, address->find('\n'))),
                          nullptr, kLoadTimeout)
                : Result<std::shared_ptr<Shim>>(std::move(address).error());
    if (shim) {
      v2::ConnectRequest creq;
      creq.set_id(id);
      if (auto c = (*shim)->Call<v2::ConnectResponse>("Connect", creq, kLoadTimeout); !c) {
        (*shim)->MarkRemoving();
        (*shim)->Close();
        shim = std::move(c).error();
      } else {
        (*shim)->SetPid(c->task_pid());
      }
    }
    if (shim) {
      // The daemon died while this task was being created: the shim runs, but holds no task
      // of this id (never created, or its create failed). Nothing to load: the shim is asked
      // to go (it stays while it serves other tasks of its group) and the bundle is removed,
      // so the id can be created again.
      if (auto st = (*shim)->State("", kLoadTimeout); !st && st.error().Is(Errc::kNotFound)) {
        entry.WithError(st.error()).Warn("shim of a previous run holds no task: removing it");
        (*shim)->MarkRemoving();
        v2::ShutdownRequest sreq;
        sreq.set_id(id);
        (void)(*shim)->Call<google::protobuf::Empty>("Shutdown", sreq, kShutdownTimeout);
        (*shim)->Close();
        CleanupDeadShim(bundle, command, true);
        continue;
      }
    }
    if (!shim) {
      entry.WithError(shim.error()).Warn("shim of a previous run is gone");
      CleanupDeadShim(bundle, command, true);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      tasks_[Key(ns, id)] = *shim;
    }
    // The connection may have dropped between Connect and here: the hook then finds it listed.
    entry.Info("task loaded");
  }
  // Work dirs without a loaded task (e.g. /run was wiped by a reboot).
  if (auto works = ReadDir(options_.root + "/" + ns); works) {
    for (const auto& w : *works) {
      bool loaded;
      {
        std::lock_guard lock(mu_);
        loaded = tasks_.contains(Key(ns, w.name));
      }
      if (!loaded) {
        if (auto st = fs::RemoveAll(options_.root + "/" + ns + "/" + w.name); !st) {
          log::L().WithError(st.error()).Error("cleanup working dir");
        }
      }
    }
  }
}

}  // namespace berth::runtime
