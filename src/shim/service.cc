#include "shim/service.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "shim/console.h"

namespace berth::shim {
namespace {

namespace events = containerd::events;
using TaskStatus = containerd::v1::types::Status;

constexpr const char* kOptionsTypeUrl = "containerd.runc.v1.Options";
constexpr std::chrono::seconds kIoWaitOnDelete(2);  // pkg/process waitTimeout

void SetTimestamp(google::protobuf::Timestamp* ts, const std::optional<Timestamp>& t) {
  if (!t) {
    // Go's zero time.Time, as the runc shim sends for a process that has not exited.
    ts->set_seconds(-62135596800);
    ts->set_nanos(0);
    return;
  }
  int64_t ns = UnixNanos(*t);
  ts->set_seconds(ns / 1000000000);
  ts->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

TaskStatus ToStatus(ProcState s) {
  switch (s) {
    case ProcState::kCreated:
      return containerd::v1::types::CREATED;
    case ProcState::kRunning:
      return containerd::v1::types::RUNNING;
    case ProcState::kPaused:
      return containerd::v1::types::PAUSED;
    case ProcState::kStopped:
      return containerd::v1::types::STOPPED;
    case ProcState::kDeleted:
      return containerd::v1::types::UNKNOWN;
  }
  return containerd::v1::types::UNKNOWN;
}

// pkg/process/utils.go checkKillError.
Error KillError(const Error& err) {
  const std::string& text = err.What();
  std::string lower = text;
  for (auto& ch : lower) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (text.find("os: process already finished") != std::string::npos ||
      text.find("container not running") != std::string::npos ||
      lower.find("no such process") != std::string::npos) {
    return NotFound("process already finished");
  }
  if (text.find("does not exist") != std::string::npos) {
    return NotFound("no such container");
  }
  return Unknown("unknown error after kill: " + text);
}

// Writes `data` to a new temp file in `dir`; returns its path.
Result<std::string> WriteTemp(const std::string& dir, const std::string& prefix,
                              const std::string& data) {
  std::string tmpl = dir + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError(errno, "create " + tmpl);
  }
  fs::UniqueFd f(fd);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::unlink(buf.data());
      return ErrnoError(err, "write " + std::string(buf.data()));
    }
    off += static_cast<size_t>(n);
  }
  return std::string(buf.data());
}

}  // namespace

bool ShouldKillAllOnExit(const std::string& bundle) {
  auto text = fs::ReadFile(bundle + "/config.json");
  if (!text) {
    return true;
  }
  auto spec = nlohmann::json::parse(*text, nullptr, false);
  if (!spec.is_object()) {
    return true;
  }
  auto linux = spec.find("linux");
  if (linux == spec.end() || !linux->is_object()) {
    return true;
  }
  auto nss = linux->find("namespaces");
  if (nss == linux->end() || !nss->is_array()) {
    return true;
  }
  for (const auto& ns : *nss) {
    if (ns.is_object() && ns.value("type", "") == "pid") {
      return !ns.value("path", "").empty();
    }
  }
  return true;
}

// By hand rather than through protobuf's JSON (reflection would build descriptors in every
// shim). Keys and order as Go's json.Marshal of the generated struct, empty values omitted.
std::string OptionsJson(const RuncOptions& o) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  auto str = [&](const char* k, const std::string& v) {
    if (!v.empty()) {
      j[k] = v;
    }
  };
  auto flag = [&](const char* k, bool v) {
    if (v) {
      j[k] = true;
    }
  };
  auto num = [&](const char* k, uint32_t v) {
    if (v != 0) {
      j[k] = v;
    }
  };
  flag("no_pivot_root", o.no_pivot_root());
  flag("no_new_keyring", o.no_new_keyring());
  str("shim_cgroup", o.shim_cgroup());
  num("io_uid", o.io_uid());
  num("io_gid", o.io_gid());
  str("binary_name", o.binary_name());
  str("root", o.root());
  str("criu_path", o.criu_path());
  flag("systemd_cgroup", o.systemd_cgroup());
  str("criu_image_path", o.criu_image_path());
  str("criu_work_path", o.criu_work_path());
  return j.dump();
}

Result<RuncOptions> ParseOptionsJson(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) {
    return InvalidArgument("options.json: not a JSON object");
  }
  RuncOptions o;
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  auto flag = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  auto num = [&](const char* k) -> uint32_t {
    auto it = j.find(k);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint32_t>() : 0;
  };
  o.set_no_pivot_root(flag("no_pivot_root"));
  o.set_no_new_keyring(flag("no_new_keyring"));
  o.set_shim_cgroup(str("shim_cgroup"));
  o.set_io_uid(num("io_uid"));
  o.set_io_gid(num("io_gid"));
  o.set_binary_name(str("binary_name"));
  o.set_root(str("root"));
  o.set_criu_path(str("criu_path"));
  o.set_systemd_cgroup(flag("systemd_cgroup"));
  o.set_criu_image_path(str("criu_image_path"));
  o.set_criu_work_path(str("criu_work_path"));
  return o;
}

Service::Service(asio::io_context& io, ServiceConfig config, Publisher& publisher,
                 std::function<void()> shutdown)
    : io_(io),
      config_(std::move(config)),
      publisher_(publisher),
      shutdown_(std::move(shutdown)),
      oom_(io, [this](const std::string& id) {
        events::TaskOOM e;
        e.set_container_id(id);
        publisher_.Publish("/tasks/oom", "containerd.events.TaskOOM", e);
      }) {}

Service::~Service() = default;

Result<Container*> Service::GetContainer(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return NotFound("container not created");
  }
  return it->second.get();
}

Result<Process*> Service::GetProcess(Container& c, const std::string& exec_id) {
  if (exec_id.empty()) {
    return c.init.get();
  }
  auto it = c.execs.find(exec_id);
  if (it == c.execs.end()) {
    return NotFound("process does not exist " + exec_id);
  }
  return it->second.get();
}

Result<task::CreateTaskResponse> Service::Create(const task::CreateTaskRequest& req) {
  if (containers_.count(req.id()) != 0) {
    return AlreadyExists("container " + req.id());
  }
  auto c = std::make_unique<Container>();
  c->id = req.id();
  c->bundle = req.bundle();
  if (req.has_options() && !req.options().type_url().empty()) {
    if (req.options().type_url() != kOptionsTypeUrl &&
        req.options().type_url() != std::string("type.googleapis.com/") + kOptionsTypeUrl) {
      return InvalidArgument("unsupported runtime options type " + req.options().type_url());
    }
    if (!c->options.ParseFromString(req.options().value())) {
      return InvalidArgument("malformed containerd.runc.v1.Options");
    }
  }
  // Persisted for `delete`, which runs without this process (runtime/v2/runc/container.go).
  BERTH_TRY(fs::ReplaceFile(c->bundle + "/options.json", OptionsJson(c->options), 0600));
  BERTH_TRY(fs::ReplaceFile(c->bundle + "/runtime", c->options.binary_name(), 0600));

  std::string root = c->options.root().empty() ? config_.runc_root : c->options.root();
  c->runc = std::make_unique<Runc>(RuncConfig{
      .binary = c->options.binary_name().empty() ? "runc" : c->options.binary_name(),
      .root = root + "/" + config_.ns,
      .log_path = c->bundle + "/log.json",
      .systemd_cgroup = c->options.systemd_cgroup(),
  });
  c->kill_all_on_exit = ShouldKillAllOnExit(c->bundle);

  if (req.rootfs_size() > 0) {
    std::string rootfs = c->bundle + "/rootfs";
    if (::mkdir(rootfs.c_str(), 0711) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir " + rootfs);
    }
    std::vector<mount::Mount> mounts;
    for (const auto& m : req.rootfs()) {
      mounts.push_back(mount::Mount{.type = m.type(),
                                    .source = m.source(),
                                    .target = m.target(),
                                    .options = {m.options().begin(), m.options().end()}});
    }
    if (auto st = mount::MountAll(mounts, rootfs); !st) {
      return std::move(st).error().Wrap("failed to mount rootfs component");
    }
    c->rootfs = rootfs;
  }
  // Undo the mount if anything below fails.
  struct Unmounter {
    std::string path;
    ~Unmounter() {
      if (!path.empty()) {
        (void)mount::UnmountAll(path);
      }
    }
  } unmounter{c->rootfs};

  auto init = std::make_unique<Process>();
  init->id = req.id();
  init->is_init = true;
  init->stdio = Stdio{.stdin_path = req.stdin(),
                      .stdout_path = req.stdout(),
                      .stderr_path = req.stderr(),
                      .terminal = req.terminal()};
  BERTH_ASSIGN_OR_RETURN(
      init->io, ProcessIo::Create(io_, init->stdio, static_cast<int>(c->options.io_uid()),
                                  static_cast<int>(c->options.io_gid()), c->id, config_.ns));
  std::optional<ConsoleSocket> console;
  if (req.terminal()) {
    BERTH_ASSIGN_OR_RETURN(auto cs, ConsoleSocket::Create());
    console.emplace(std::move(cs));
  }
  if (!req.checkpoint().empty()) {
    return NotImplemented("restore from a checkpoint is not supported by containerd-shim-berth-v2");
  }
  std::string pid_file = c->bundle + "/init.pid";
  BERTH_TRY(c->runc->Create(c->id,
                            CreateOpts{.bundle = c->bundle,
                                       .pid_file = pid_file,
                                       .console_socket = console ? console->Path() : "",
                                       .no_pivot = c->options.no_pivot_root(),
                                       .no_new_keyring = c->options.no_new_keyring()},
                            init->io->RuntimeFds()));
  auto pid = ReadPidFile(pid_file);
  if (!pid) {
    (void)c->runc->Delete(c->id, true);
    return std::move(pid).error().Wrap("failed to retrieve OCI runtime container pid");
  }
  init->pid = *pid;
  if (console) {
    auto master = console->ReceiveMaster();
    if (!master) {
      (void)c->runc->Delete(c->id, true);
      return std::move(master).error();
    }
    BERTH_TRY(init->io->StartConsole(std::move(*master)));
  } else {
    BERTH_TRY(init->io->Started());
  }
  if (auto cg = LoadCgroup(init->pid, config_.cgroup_mode)) {
    c->cgroup = std::move(*cg);
  } else {
    log::L().With("id", c->id).WithError(cg.error()).Warn("loading cgroup");
  }
  unmounter.path.clear();

  events::TaskCreate e;
  e.set_container_id(c->id);
  e.set_bundle(c->bundle);
  *e.mutable_rootfs() = req.rootfs();
  e.mutable_io()->set_stdin(req.stdin());
  e.mutable_io()->set_stdout(req.stdout());
  e.mutable_io()->set_stderr(req.stderr());
  e.mutable_io()->set_terminal(req.terminal());
  e.set_checkpoint(req.checkpoint());
  e.set_pid(static_cast<uint32_t>(init->pid));
  publisher_.Publish("/tasks/create", "containerd.events.TaskCreate", e);

  task::CreateTaskResponse resp;
  resp.set_pid(static_cast<uint32_t>(init->pid));
  c->init = std::move(init);
  log::L().With("id", c->id).With("pid", c->init->pid).Info("container created");
  containers_[c->id] = std::move(c);
  return resp;
}

Result<task::StartResponse> Service::Start(const task::StartRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  BERTH_ASSIGN_OR_RETURN(Process * p, GetProcess(*c, req.exec_id()));
  switch (p->state) {
    case ProcState::kCreated:
      break;
    case ProcState::kRunning:
      return Unknown("cannot start a running process");
    case ProcState::kPaused:
      return Unknown("cannot start a paused process");
    case ProcState::kStopped:
      return Unknown("cannot start a stopped process");
    case ProcState::kDeleted:
      return Unknown("cannot start a deleted process");
  }
  if (p->is_init) {
    BERTH_TRY(c->runc->Start(c->id));
    p->state = ProcState::kRunning;
    if (c->cgroup) {
      if (auto st = oom_.Add(c->id, *c->cgroup); !st) {
        log::L().With("id", c->id).WithError(st.error()).Warn("add cg to OOM monitor");
      }
    }
    events::TaskStart e;
    e.set_container_id(c->id);
    e.set_pid(static_cast<uint32_t>(p->pid));
    publisher_.Publish("/tasks/start", "containerd.events.TaskStart", e);
  } else {
    BERTH_TRY(StartExec(*c, *p));
    events::TaskExecStarted e;
    e.set_container_id(c->id);
    e.set_exec_id(p->id);
    e.set_pid(static_cast<uint32_t>(p->pid));
    publisher_.Publish("/tasks/exec-started", "containerd.events.TaskExecStarted", e);
  }
  task::StartResponse resp;
  resp.set_pid(static_cast<uint32_t>(p->pid));
  return resp;
}

Status Service::StartExec(Container& c, Process& p) {
  BERTH_ASSIGN_OR_RETURN(p.io,
                         ProcessIo::Create(io_, p.stdio, static_cast<int>(c.options.io_uid()),
                                           static_cast<int>(c.options.io_gid()), c.id, config_.ns));
  std::optional<ConsoleSocket> console;
  if (p.stdio.terminal) {
    BERTH_ASSIGN_OR_RETURN(auto cs, ConsoleSocket::Create());
    console.emplace(std::move(cs));
  }
  BERTH_ASSIGN_OR_RETURN(std::string spec_file, WriteTemp(c.bundle, ".runc-process", p.spec_json));
  std::string pid_file = c.bundle + "/" + p.id + ".pid";
  Status st = c.runc->Exec(c.id,
                           ExecOpts{.process_file = spec_file,
                                    .pid_file = pid_file,
                                    .console_socket = console ? console->Path() : ""},
                           p.io->RuntimeFds());
  ::unlink(spec_file.c_str());
  if (!st) {
    p.io->Close();
    return st;
  }
  auto pid = ReadPidFile(pid_file);
  if (!pid) {
    return std::move(pid).error().Wrap("failed to retrieve OCI runtime exec pid");
  }
  p.pid = *pid;
  p.state = ProcState::kRunning;
  if (console) {
    BERTH_ASSIGN_OR_RETURN(auto master, console->ReceiveMaster());
    BERTH_TRY(p.io->StartConsole(std::move(master)));
  } else {
    BERTH_TRY(p.io->Started());
  }
  return Ok();
}

void Service::Delete(const task::DeleteRequest& req,
                     ttrpc::TypedResponder<task::DeleteResponse> r) {
  auto c = GetContainer(req.id());
  if (!c) {
    r.Fail(c.error());
    return;
  }
  auto p = GetProcess(**c, req.exec_id());
  if (!p) {
    r.Fail(p.error());
    return;
  }
  Process& proc = **p;
  switch (proc.state) {
    case ProcState::kCreated:
    case ProcState::kStopped:
      break;
    case ProcState::kRunning:
      r.Fail(Unknown("cannot delete a running process"));
      return;
    case ProcState::kPaused:
      r.Fail(Unknown("cannot delete a paused process"));
      return;
    case ProcState::kDeleted:
      r.Fail(NotFound("cannot delete a deleted process"));
      return;
  }
  if (proc.deleting) {
    r.Fail(FailedPrecondition("process " + proc.id + " is being deleted"));
    return;
  }
  proc.deleting = true;
  // Let the output drain into the client's FIFOs first, for at most 2 s (pkg/process delete).
  if (proc.io && !proc.io->OutputDone()) {
    struct Shared {
      bool fired = false;
      ttrpc::TypedResponder<task::DeleteResponse> r;
      asio::steady_timer timer;
      explicit Shared(asio::io_context& io, ttrpc::TypedResponder<task::DeleteResponse> rr)
          : r(std::move(rr)), timer(io) {}
    };
    auto shared = std::make_shared<Shared>(io_, std::move(r));
    auto finish = [this, shared, id = req.id(), exec_id = req.exec_id()] {
      if (shared->fired) {
        return;
      }
      shared->fired = true;
      shared->timer.cancel();
      FinishDelete(id, exec_id, std::move(shared->r));
    };
    shared->timer.expires_after(kIoWaitOnDelete);
    shared->timer.async_wait([finish](const asio::error_code& ec) {
      if (!ec) {
        finish();
      }
    });
    proc.io->OnOutputDone([this, finish] { asio::post(io_, finish); });
    return;
  }
  FinishDelete(req.id(), req.exec_id(), std::move(r));
}

void Service::FinishDelete(const std::string& id, const std::string& exec_id,
                           ttrpc::TypedResponder<task::DeleteResponse> r) {
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    r.Fail(NotFound("container not created"));
    return;
  }
  Container& c = *it->second;
  auto p = GetProcess(c, exec_id);
  if (!p) {
    r.Fail(p.error());
    return;
  }
  Process& proc = **p;
  proc.deleting = false;
  task::DeleteResponse resp;
  resp.set_pid(static_cast<uint32_t>(proc.pid));
  resp.set_exit_status(static_cast<uint32_t>(proc.exit_status));
  SetTimestamp(resp.mutable_exited_at(), proc.exited_at);
  if (proc.io) {
    proc.io->Close();
  }
  if (!proc.is_init) {
    ::unlink((c.bundle + "/" + proc.id + ".pid").c_str());
    c.execs.erase(exec_id);
    r.Reply(resp);
    return;
  }
  Status st = c.runc->Delete(c.id, false);
  if (!st && st.error().What().find("does not exist") != std::string::npos) {
    st = Ok();  // already gone in the runtime (pkg/process/init.go delete)
  }
  if (!st) {
    st = Unknown("failed to delete task: " + st.error().What());
  }
  if (!c.rootfs.empty()) {
    if (auto um = mount::UnmountAll(c.rootfs); !um) {
      log::L().With("id", c.id).WithError(um.error()).Warn("failed to cleanup rootfs mount");
      if (st) {
        st = std::move(um).error().Wrap("failed rootfs umount");
      }
    }
  }
  if (!st) {
    proc.state = ProcState::kStopped;
    r.Fail(st.error());
    return;
  }
  proc.state = ProcState::kDeleted;
  oom_.Remove(c.id);
  events::TaskDelete e;
  e.set_container_id(c.id);
  e.set_pid(resp.pid());
  e.set_exit_status(resp.exit_status());
  *e.mutable_exited_at() = resp.exited_at();
  publisher_.Publish("/tasks/delete", "containerd.events.TaskDelete", e);
  log::L().With("id", c.id).Info("container deleted");
  containers_.erase(it);
  r.Reply(resp);
}

Status Service::Exec(const task::ExecProcessRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  if (req.exec_id().empty()) {
    return InvalidArgument("exec id must not be empty");
  }
  if (c->execs.count(req.exec_id()) != 0) {
    return AlreadyExists("id " + req.exec_id());
  }
  switch (c->init->state) {
    case ProcState::kRunning:
      break;
    case ProcState::kCreated:
      return Unknown("cannot exec in a created state");
    case ProcState::kPaused:
      return Unknown("cannot exec in a paused state");
    case ProcState::kStopped:
      return Unknown("cannot exec in a stopped state");
    case ProcState::kDeleted:
      return Unknown("cannot exec in a deleted state");
  }
  auto p = std::make_unique<Process>();
  p->id = req.exec_id();
  p->stdio = Stdio{.stdin_path = req.stdin(),
                   .stdout_path = req.stdout(),
                   .stderr_path = req.stderr(),
                   .terminal = req.terminal()};
  p->spec_json = req.spec().value();
  if (p->spec_json.empty()) {
    return InvalidArgument("exec " + req.exec_id() + ": no process spec");
  }
  c->execs[p->id] = std::move(p);
  events::TaskExecAdded e;
  e.set_container_id(c->id);
  e.set_exec_id(req.exec_id());
  publisher_.Publish("/tasks/exec-added", "containerd.events.TaskExecAdded", e);
  return Ok();
}

Result<task::StateResponse> Service::State(const task::StateRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  BERTH_ASSIGN_OR_RETURN(Process * p, GetProcess(*c, req.exec_id()));
  task::StateResponse resp;
  resp.set_id(p->id);
  resp.set_bundle(c->bundle);
  resp.set_pid(static_cast<uint32_t>(p->pid));
  resp.set_status(ToStatus(p->state));
  resp.set_stdin(p->stdio.stdin_path);
  resp.set_stdout(p->stdio.stdout_path);
  resp.set_stderr(p->stdio.stderr_path);
  resp.set_terminal(p->stdio.terminal);
  resp.set_exit_status(static_cast<uint32_t>(p->exit_status));
  SetTimestamp(resp.mutable_exited_at(), p->exited_at);
  resp.set_exec_id(req.exec_id());
  return resp;
}

Result<task::PidsResponse> Service::Pids(const task::PidsRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  BERTH_ASSIGN_OR_RETURN(std::vector<int> pids, c->runc->Ps(c->id));
  task::PidsResponse resp;
  for (int pid : pids) {
    auto* info = resp.add_processes();
    info->set_pid(static_cast<uint32_t>(pid));
    for (const auto& [exec_id, p] : c->execs) {
      if (p->pid == pid) {
        containerd::runc::v1::ProcessDetails d;
        d.set_exec_id(exec_id);
        info->mutable_info()->set_type_url("containerd.runc.v1.ProcessDetails");
        info->mutable_info()->set_value(d.SerializeAsString());
        break;
      }
    }
  }
  return resp;
}

Status Service::Pause(const task::PauseRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  Process& p = *c->init;
  switch (p.state) {
    case ProcState::kRunning:
      break;
    case ProcState::kCreated:
      return Unknown("cannot pause task in created state");
    case ProcState::kPaused:
      return Unknown("cannot pause a paused container");
    case ProcState::kStopped:
      return Unknown("cannot pause a stopped container");
    case ProcState::kDeleted:
      return Unknown("cannot pause a deleted process");
  }
  BERTH_TRY(c->runc->Pause(c->id));
  p.state = ProcState::kPaused;
  events::TaskPaused e;
  e.set_container_id(c->id);
  publisher_.Publish("/tasks/paused", "containerd.events.TaskPaused", e);
  return Ok();
}

Status Service::Resume(const task::ResumeRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  Process& p = *c->init;
  switch (p.state) {
    case ProcState::kPaused:
      break;
    case ProcState::kCreated:
      return Unknown("cannot resume task in created state");
    case ProcState::kRunning:
      return Unknown("cannot resume a running process");
    case ProcState::kStopped:
      return Unknown("cannot resume a stopped container");
    case ProcState::kDeleted:
      return Unknown("cannot resume a deleted process");
  }
  BERTH_TRY(c->runc->Resume(c->id));
  p.state = ProcState::kRunning;
  events::TaskResumed e;
  e.set_container_id(c->id);
  publisher_.Publish("/tasks/resumed", "containerd.events.TaskResumed", e);
  return Ok();
}

Status Service::Kill(const task::KillRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  BERTH_ASSIGN_OR_RETURN(Process * p, GetProcess(*c, req.exec_id()));
  if (p->state == ProcState::kDeleted) {
    return NotFound("cannot kill a deleted process");
  }
  if (p->is_init) {
    if (auto st = c->runc->Kill(c->id, static_cast<int>(req.signal()), req.all()); !st) {
      return KillError(st.error());
    }
    return Ok();
  }
  // An exec is signalled directly (pkg/process/exec.go kill).
  if (p->pid == 0) {
    return FailedPrecondition("process not created");
  }
  if (p->exited_at) {
    return NotFound("process already finished");
  }
  if (::kill(p->pid, static_cast<int>(req.signal())) != 0) {
    return KillError(Unknown(std::string("exec kill error: ") + std::strerror(errno)));
  }
  return Ok();
}

Status Service::ResizePty(const task::ResizePtyRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  BERTH_ASSIGN_OR_RETURN(Process * p, GetProcess(*c, req.exec_id()));
  if (p->state == ProcState::kStopped) {
    return Unknown("cannot resize a stopped container");
  }
  if (p->state == ProcState::kDeleted) {
    return Unknown("cannot resize a deleted process");
  }
  if (!p->io) {
    return Ok();
  }
  return p->io->Resize(req.width(), req.height());
}

Status Service::CloseIo(const task::CloseIORequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  BERTH_ASSIGN_OR_RETURN(Process * p, GetProcess(*c, req.exec_id()));
  if (req.stdin() && p->io) {
    p->io->CloseStdin();
  }
  return Ok();
}

Status Service::Update(const task::UpdateTaskRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  switch (c->init->state) {
    case ProcState::kStopped:
      return Unknown("cannot update a stopped container");
    case ProcState::kDeleted:
      return Unknown("cannot update a deleted process");
    default:
      break;
  }
  return c->runc->Update(c->id, req.resources().value());
}

void Service::Wait(const task::WaitRequest& req, ttrpc::TypedResponder<task::WaitResponse> r) {
  auto c = GetContainer(req.id());
  if (!c) {
    r.Fail(c.error());
    return;
  }
  auto p = GetProcess(**c, req.exec_id());
  if (!p) {
    r.Fail(p.error());
    return;
  }
  if ((*p)->exited_at) {
    task::WaitResponse resp;
    resp.set_exit_status(static_cast<uint32_t>((*p)->exit_status));
    SetTimestamp(resp.mutable_exited_at(), (*p)->exited_at);
    r.Reply(resp);
    return;
  }
  (*p)->waiters.push_back(std::move(r));
}

Result<task::StatsResponse> Service::Stats(const task::StatsRequest& req) {
  BERTH_ASSIGN_OR_RETURN(Container * c, GetContainer(req.id()));
  if (!c->cgroup) {
    return NotFound("cgroup does not exist");
  }
  BERTH_ASSIGN_OR_RETURN(auto any, CgroupStats(*c->cgroup));
  task::StatsResponse resp;
  *resp.mutable_stats() = std::move(any);
  return resp;
}

Result<task::ConnectResponse> Service::Connect(const task::ConnectRequest& req) {
  task::ConnectResponse resp;
  resp.set_shim_pid(static_cast<uint32_t>(::getpid()));
  if (auto it = containers_.find(req.id()); it != containers_.end()) {
    resp.set_task_pid(static_cast<uint32_t>(it->second->init->pid));
  }
  return resp;
}

Status Service::Shutdown(const task::ShutdownRequest& req) {
  if (!containers_.empty() && !req.now()) {
    return Ok();
  }
  if (!shutting_down_) {
    shutting_down_ = true;
    shutdown_();  // synchronous: the socket goes before this rpc is answered
  }
  return Ok();
}

void Service::SetExited(Container& c, Process& p, int exit_code) {
  p.state = ProcState::kStopped;
  p.exit_status = exit_code;
  p.exited_at = Now();
  task::WaitResponse resp;
  resp.set_exit_status(static_cast<uint32_t>(exit_code));
  SetTimestamp(resp.mutable_exited_at(), p.exited_at);
  for (auto& w : std::exchange(p.waiters, {})) {
    w.Reply(resp);
  }
  events::TaskExit e;
  e.set_container_id(c.id);
  e.set_id(p.id);
  e.set_pid(static_cast<uint32_t>(p.pid));
  e.set_exit_status(static_cast<uint32_t>(exit_code));
  *e.mutable_exited_at() = resp.exited_at();
  publisher_.Publish("/tasks/exit", "containerd.events.TaskExit", e);
}

void Service::OnExit(pid_t pid, int exit_code) {
  for (auto& [id, c] : containers_) {
    // A binary:// logger of one of the processes: forget it, so its pid is never signalled
    // after reuse.
    if (c->init && c->init->io && c->init->io->LoggerPid() == pid) {
      c->init->io->LoggerExited();
      return;
    }
    for (auto& [exec_id, p] : c->execs) {
      if (p->io && p->io->LoggerPid() == pid) {
        p->io->LoggerExited();
        return;
      }
    }
  }
  for (auto& [id, c] : containers_) {
    Process* match = nullptr;
    if (c->init && c->init->pid == pid && !c->init->exited_at) {
      match = c->init.get();
    } else {
      for (auto& [exec_id, p] : c->execs) {
        if (p->pid == pid && !p->exited_at) {
          match = p.get();
          break;
        }
      }
    }
    if (match == nullptr) {
      continue;
    }
    if (match->is_init && c->kill_all_on_exit) {
      // No pid namespace of its own: the kernel won't kill the rest for us.
      if (auto st = c->runc->Kill(c->id, SIGKILL, true); !st) {
        log::L().With("id", c->id).WithError(st.error()).Warn("failed to kill init's children");
      }
    }
    log::L().With("id", c->id).With("pid", pid).With("status", exit_code).Info("process exited");
    SetExited(*c, *match, exit_code);
    return;
  }
}

void Service::Register(ttrpc::Server& server) {
  constexpr const char* kSvc = "containerd.task.v2.Task";
  using Empty = google::protobuf::Empty;
  auto unary_empty = [](auto fn) {
    return [fn](const ttrpc::CallContext&, const auto& req) -> Result<Empty> {
      BERTH_TRY(fn(req));
      return Empty();
    };
  };
  server.RegisterUnary<task::CreateTaskRequest, task::CreateTaskResponse>(
      kSvc, "Create",
      [this](const ttrpc::CallContext&, const task::CreateTaskRequest& r) { return Create(r); });
  server.RegisterUnary<task::StartRequest, task::StartResponse>(
      kSvc, "Start",
      [this](const ttrpc::CallContext&, const task::StartRequest& r) { return Start(r); });
  server.RegisterAsync<task::DeleteRequest, task::DeleteResponse>(
      kSvc, "Delete",
      [this](const ttrpc::CallContext&, const task::DeleteRequest& r,
             ttrpc::TypedResponder<task::DeleteResponse> resp) { Delete(r, std::move(resp)); });
  server.RegisterUnary<task::ExecProcessRequest, Empty>(
      kSvc, "Exec", unary_empty([this](const task::ExecProcessRequest& r) { return Exec(r); }));
  server.RegisterUnary<task::StateRequest, task::StateResponse>(
      kSvc, "State",
      [this](const ttrpc::CallContext&, const task::StateRequest& r) { return State(r); });
  server.RegisterUnary<task::PidsRequest, task::PidsResponse>(
      kSvc, "Pids",
      [this](const ttrpc::CallContext&, const task::PidsRequest& r) { return Pids(r); });
  server.RegisterUnary<task::PauseRequest, Empty>(
      kSvc, "Pause", unary_empty([this](const task::PauseRequest& r) { return Pause(r); }));
  server.RegisterUnary<task::ResumeRequest, Empty>(
      kSvc, "Resume", unary_empty([this](const task::ResumeRequest& r) { return Resume(r); }));
  server.RegisterUnary<task::CheckpointTaskRequest, Empty>(
      kSvc, "Checkpoint",
      [](const ttrpc::CallContext&, const task::CheckpointTaskRequest&) -> Result<Empty> {
        return NotImplemented("checkpoint is not supported by containerd-shim-berth-v2");
      });
  server.RegisterUnary<task::KillRequest, Empty>(
      kSvc, "Kill", unary_empty([this](const task::KillRequest& r) { return Kill(r); }));
  server.RegisterUnary<task::ResizePtyRequest, Empty>(
      kSvc, "ResizePty",
      unary_empty([this](const task::ResizePtyRequest& r) { return ResizePty(r); }));
  server.RegisterUnary<task::CloseIORequest, Empty>(
      kSvc, "CloseIO", unary_empty([this](const task::CloseIORequest& r) { return CloseIo(r); }));
  server.RegisterUnary<task::UpdateTaskRequest, Empty>(
      kSvc, "Update", unary_empty([this](const task::UpdateTaskRequest& r) { return Update(r); }));
  server.RegisterAsync<task::WaitRequest, task::WaitResponse>(
      kSvc, "Wait",
      [this](const ttrpc::CallContext&, const task::WaitRequest& r,
             ttrpc::TypedResponder<task::WaitResponse> resp) { Wait(r, std::move(resp)); });
  server.RegisterUnary<task::StatsRequest, task::StatsResponse>(
      kSvc, "Stats",
      [this](const ttrpc::CallContext&, const task::StatsRequest& r) { return Stats(r); });
  server.RegisterUnary<task::ConnectRequest, task::ConnectResponse>(
      kSvc, "Connect",
      [this](const ttrpc::CallContext&, const task::ConnectRequest& r) { return Connect(r); });
  server.RegisterUnary<task::ShutdownRequest, Empty>(
      kSvc, "Shutdown",
      unary_empty([this](const task::ShutdownRequest& r) { return Shutdown(r); }));
}

}  // namespace berth::shim
