// `berth tasks`: ctr's task commands (start, list, ps, exec, kill, pause, resume, metrics,
// attach, delete) plus `update` (resources of a running task).
#include <github.com/containerd/cgroups/stats/v1/metrics.pb.h>
#include <github.com/containerd/cgroups/v2/stats/metrics.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cio.h"
#include "cli/format.h"
#include "cli/run.h"
#include "cli/table.h"
#include "cli/tabwriter.h"
#include "common/log.h"
#include "oci/spec.h"

namespace berth::cli {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace pb = google::protobuf;

Status RequireId(const std::string& id) {
  if (id.empty()) return Unknown("container id must be provided");
  return Ok();
}

// The process a --exec-id names, or the task itself.
Result<berth::Process> ProcessOf(const berth::Task& task, const std::string& exec_id) {
  if (exec_id.empty()) return berth::Process(task);
  return task.LoadProcess(exec_id);
}

// encoding/json of a gogo-generated message: fields in declaration order under their proto
// names, zero values and empty lists left out (omitempty), 64-bit integers as numbers.
ojson GoJson(const pb::Message& m) {
  ojson j = ojson::object();
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    auto scalar = [&](int index) -> ojson {
      using FD = pb::FieldDescriptor;
      bool rep = index >= 0;
      switch (f->cpp_type()) {
        case FD::CPPTYPE_INT32:
          return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
        case FD::CPPTYPE_INT64:
          return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
        case FD::CPPTYPE_UINT32:
          return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
        case FD::CPPTYPE_UINT64:
          return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
        case FD::CPPTYPE_DOUBLE:
          return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
        case FD::CPPTYPE_FLOAT:
          return rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
        case FD::CPPTYPE_BOOL:
          return rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
        case FD::CPPTYPE_ENUM:
          return rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
        case FD::CPPTYPE_STRING:
          return rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
        case FD::CPPTYPE_MESSAGE:
          return GoJson(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
      }
      return nullptr;
    };
    if (f->is_repeated()) {
      int n = r->FieldSize(m, f);
      if (n == 0) continue;
      ojson arr = ojson::array();
      for (int k = 0; k < n; ++k) arr.push_back(scalar(k));
      j[f->name()] = arr;
      continue;
    }
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(m, f)) continue;
      j[f->name()] = scalar(-1);
      continue;
    }
    ojson v = scalar(-1);
    if ((v.is_number() && v == 0) || (v.is_string() && v.get<std::string>().empty()) ||
        (v.is_boolean() && !v.get<bool>())) {
      continue;
    }
    j[f->name()] = v;
  }
  return j;
}

std::string GoUintList(const pb::RepeatedField<uint64_t>& list) {
  std::string out = "[";
  for (int i = 0; i < list.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(list.Get(i));
  }
  return out + "]";
}

Status ListAction(App& app, bool quiet, const std::string& format) {
  BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(format));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto tasks, LibClient(session).Tasks());
  if (quiet) {
    for (const auto& t : tasks) fmt::print("{}\n", t.id);
    return Ok();
  }
  Table table({{"TASK", "id"}, {"PID", "pid"}, {"STATUS", "status"}, {"", "exit_status"}},
              {.writer = TabWriter(4, 4), .row_end = "\n"});
  for (const auto& t : tasks) {
    std::string state(berth::StateName(t.state));  // ctr prints the protobuf name: RUNNING
    for (auto& ch : state) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    table.Add(
        {t.id, NumberCell(std::to_string(t.pid), t.pid), state, NumberCell("", t.exit_status)});
  }
  fmt::print("{}", table.Render(output));
  return Ok();
}

Status PsAction(App& app, const std::string& format, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(format));
  BERTH_TRY(RequireId(id));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_TRY(GetContainer(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  BERTH_ASSIGN_OR_RETURN(auto processes, task.Pids());
  Table table({{"PID", "pid"}, {"INFO", "info"}, {"", "exec_id"}},
              {.writer = TabWriter(1, 4), .header_end = "\n", .row_end = "\n"});
  for (const auto& p : processes) {
    std::string info = "-";
    std::string exec_id;
    if (!p.info_type_url.empty()) {
      if (p.info_type_url == "containerd.runc.v1.ProcessDetails") {
        containerd::runc::v1::ProcessDetails details;
        if (!details.ParseFromString(p.info)) {
          return InvalidArgument("process info: malformed containerd.runc.v1.ProcessDetails");
        }
        // gogo's String() of the message, which ctr's %+v prints.
        info = fmt::format("&ProcessDetails{{ExecID:{},XXX_unrecognized:[],}}", details.exec_id());
        exec_id = details.exec_id();
      } else {
        return NotFound(fmt::format("type with url {}: not found", p.info_type_url));
      }
    }
    table.Add({NumberCell(std::to_string(p.pid), p.pid), info, exec_id});
  }
  fmt::print("{}", table.Render(output));
  return Ok();
}

Status KillAction(App& app, const std::string& signal, const std::string& exec_id, bool all,
                  const std::string& id) {
  BERTH_TRY(RequireId(id));
  BERTH_ASSIGN_OR_RETURN(int sig, ParseSignal("SIGTERM"));
  if (all && !exec_id.empty()) return Unknown("specify an exec-id or all; not both");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(session, id));
  if (!signal.empty()) {
    BERTH_ASSIGN_OR_RETURN(sig, ParseSignal(signal));
  } else if (auto it = c.labels().find(kStopSignalLabel); it != c.labels().end()) {
    // containerd.GetStopSignal: the image's stop signal recorded on the container.
    BERTH_ASSIGN_OR_RETURN(sig, ParseSignal(it->second));
  }
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Process process, ProcessOf(task, exec_id));
  return process.Kill(sig, all);
}

// `tasks stop`: SIGTERM (or the image's stop signal label), up to `timeout` for the task to
// exit, then SIGKILL to all its processes; prints nothing and exits 0 once it has stopped.
Status StopAction(App& app, const std::string& id, const std::string& timeout_text) {
  BERTH_ASSIGN_OR_RETURN(auto timeout, ParseDuration(timeout_text));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto container, GetContainer(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  BERTH_ASSIGN_OR_RETURN(auto p, task.GetStatus());
  if (p.state == berth::TaskState::kStopped) return Ok();
  BERTH_ASSIGN_OR_RETURN(int sig, ParseSignal("SIGTERM"));
  if (auto it = container.labels().find("io.containerd.image.config.stop-signal");
      it != container.labels().end()) {
    BERTH_ASSIGN_OR_RETURN(sig, ParseSignal(it->second));
  }
  BERTH_ASSIGN_OR_RETURN(auto waiter, task.Wait());
  if (Status st = task.Kill(sig); !st && !st.error().Is(Errc::kNotFound)) return st;
  if (auto done = waiter.GetFor(timeout)) return *done ? Ok() : Status(done->error());
  log::L().With("timeout", timeout_text).Warn(fmt::format("task {:?} still running: SIGKILL", id));
  if (Status st = task.Kill(SIGKILL, true); !st && !st.error().Is(Errc::kNotFound)) {
    return st;
  }
  auto done = waiter.Get();
  return done ? Ok() : Status(done.error());
}

Status PauseResumeAction(App& app, const std::string& id, bool pause) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_TRY(GetContainer(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  return pause ? task.Pause() : task.Resume();
}

Status DeleteAction(App& app, bool force, const std::string& exec_id,
                    const std::vector<std::string>& ids, int* exit_code) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  // containerd's WithProcessKill: SIGKILL (all processes for a task), wait, then delete.
  auto kill_and_wait = [](const berth::Process& p) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto status, p.GetStatus());
    if (status.state == berth::TaskState::kStopped) return Ok();
    BERTH_ASSIGN_OR_RETURN(auto waiter, p.Wait());
    if (Status st = p.Kill(SIGKILL, p.ExecId().empty()); !st && !st.error().Is(Errc::kNotFound)) {
      return st;
    }
    (void)waiter.Get();
    return Ok();
  };
  // The Go client's pre-check before Delete, in ctr's words.
  auto check_stopped = [](const berth::Process& p) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto status, p.GetStatus());
    if (status.state == berth::TaskState::kStopped || status.state == berth::TaskState::kCreated) {
      return Ok();
    }
    return FailedPrecondition(
        fmt::format("task must be stopped before deletion: {}", berth::StateName(status.state)));
  };
  if (!exec_id.empty()) {
    std::string id = ids.empty() ? "" : ids[0];
    BERTH_TRY(GetContainer(session, id));
    BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
    BERTH_ASSIGN_OR_RETURN(berth::Process process, task.LoadProcess(exec_id));
    if (force) BERTH_TRY(kill_and_wait(process));
    BERTH_TRY(check_stopped(process));
    BERTH_ASSIGN_OR_RETURN(auto status, process.Delete());
    *exit_code = static_cast<int>(status.code);
    return Ok();
  }
  std::optional<Error> exit_error;
  for (const auto& id : ids) {
    auto result = [&]() -> Result<uint32_t> {
      auto c = GetContainer(session, id);
      if (!c) return std::move(c).error().Wrap("failed to load task from " + id);
      auto task = LoadTask(session, id);
      if (!task) return std::move(task).error().Wrap("failed to load task from " + id);
      if (force) BERTH_TRY(kill_and_wait(*task));
      BERTH_TRY(check_stopped(*task));
      BERTH_ASSIGN_OR_RETURN(auto status, task->Delete());
      return status.code;
    }();
    if (!result) {
      // The first failure is printed once, as the command's error; later ones are logged.
      if (!exit_error) {
        exit_error = std::move(result).error();  // it names the task
      } else {
        log::L().WithError(result.error()).Error("unable to delete " + id);
      }
      continue;
    }
    if (*result != 0) {
      log::L().Warn(fmt::format("task {} exit with non-zero exit code {}", id, *result));
    }
  }
  if (exit_error) return *exit_error;
  return Ok();
}

Status MetricsAction(App& app, const std::string& format, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_TRY(GetContainer(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Metrics metric, task.GetMetrics());
  io::containerd::cgroups::v1::Metrics v1;
  io::containerd::cgroups::v2::Metrics v2;
  const pb::Message* data = nullptr;
  const std::string& url = metric.type_url;
  if (url == "io.containerd.cgroups.v1.Metrics") {
    if (!v1.ParseFromString(metric.data)) return InvalidArgument("malformed v1 metrics");
    data = &v1;
  } else if (url == "io.containerd.cgroups.v2.Metrics") {
    if (!v2.ParseFromString(metric.data)) return InvalidArgument("malformed v2 metrics");
    data = &v2;
  } else {
    return Unknown("cannot convert metric data to cgroups.Metrics or windows.Statistics");
  }
  if (format == "table") {
    TabWriter tw(1, 4);
    tw.Write("ID\tTIMESTAMP\t\n");
    tw.Write(fmt::format("{}\t{}\t\n\n", metric.id, GoTimeString(metric.timestamp)));
    tw.Write("METRIC\tVALUE\t\n");
    if (data == &v1) {
      if (v1.has_memory()) {
        tw.Write(fmt::format("memory.usage_in_bytes\t{}\t\n", v1.memory().usage().usage()));
        tw.Write(fmt::format("memory.limit_in_bytes\t{}\t\n", v1.memory().usage().limit()));
        tw.Write(fmt::format("memory.stat.cache\t{}\t\n", v1.memory().total_cache()));
      }
      if (v1.has_cpu()) {
        tw.Write(fmt::format("cpuacct.usage\t{}\t\n", v1.cpu().usage().total()));
        tw.Write(
            fmt::format("cpuacct.usage_percpu\t{}\t\n", GoUintList(v1.cpu().usage().per_cpu())));
      }
      if (v1.has_pids()) {
        tw.Write(fmt::format("pids.current\t{}\t\n", v1.pids().current()));
        tw.Write(fmt::format("pids.limit\t{}\t\n", v1.pids().limit()));
      }
    } else {
      if (v2.has_pids()) {
        tw.Write(fmt::format("pids.current\t{}\t\n", v2.pids().current()));
        tw.Write(fmt::format("pids.limit\t{}\t\n", v2.pids().limit()));
      }
      if (v2.has_cpu()) {
        tw.Write(fmt::format("cpu.usage_usec\t{}\t\n", v2.cpu().usage_usec()));
        tw.Write(fmt::format("cpu.user_usec\t{}\t\n", v2.cpu().user_usec()));
        tw.Write(fmt::format("cpu.system_usec\t{}\t\n", v2.cpu().system_usec()));
        tw.Write(fmt::format("cpu.nr_periods\t{}\t\n", v2.cpu().nr_periods()));
        tw.Write(fmt::format("cpu.nr_throttled\t{}\t\n", v2.cpu().nr_throttled()));
        tw.Write(fmt::format("cpu.throttled_usec\t{}\t\n", v2.cpu().throttled_usec()));
      }
      if (v2.has_memory()) {
        tw.Write(fmt::format("memory.usage\t{}\t\n", v2.memory().usage()));
        tw.Write(fmt::format("memory.usage_limit\t{}\t\n", v2.memory().usage_limit()));
        tw.Write(fmt::format("memory.swap_usage\t{}\t\n", v2.memory().swap_usage()));
        tw.Write(fmt::format("memory.swap_limit\t{}\t\n", v2.memory().swap_limit()));
      }
    }
    fmt::print("{}", tw.Flush());
    return Ok();
  }
  if (format == "json") {
    fmt::print("{}\n", GoJson(*data).dump(2));
    return Ok();
  }
  return Unknown("format must be table or json");
}

struct UpdateFlags {
  int64_t memory_limit = 0;
  int64_t cpu_quota = 0;
  uint64_t cpu_period = 0;
  uint64_t cpu_shares = 0;
  int64_t pids_limit = 0;
};

// Update with a LinuxResources JSON holding only what was given (containerd's WithResources).
Status UpdateAction(App& app, const UpdateFlags& f, const std::string& id) {
  BERTH_TRY(RequireId(id));
  json resources = json::object();
  if (f.memory_limit != 0) resources["memory"]["limit"] = f.memory_limit;
  if (f.cpu_quota != 0) resources["cpu"]["quota"] = f.cpu_quota;
  if (f.cpu_period != 0) resources["cpu"]["period"] = f.cpu_period;
  if (f.cpu_shares != 0) resources["cpu"]["shares"] = f.cpu_shares;
  if (f.pids_limit != 0) resources["pids"]["limit"] = f.pids_limit;
  if (resources.empty()) return InvalidArgument("nothing to update: give at least one limit");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_TRY(GetContainer(session, id));
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  return task.Update(resources.dump());
}

struct ExecFlags {
  std::string cwd;
  bool tty = false;
  bool detach = false;
  std::string exec_id;
  std::string fifo_dir;
  std::string log_uri;
  std::string user;
  bool interactive = false;  // accepted: stdin is attached either way
};

Result<int> ExecAction(App& app, const ExecFlags& f, const std::vector<std::string>& args) {
  std::string id = args.empty() ? "" : args[0];
  BERTH_TRY(RequireId(id));
  if (f.exec_id.empty()) return Unknown("Required flag \"exec-id\" not set");
  std::vector<std::string> cmd(args.begin() + 1, args.end());
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(session, id));
  BERTH_ASSIGN_OR_RETURN(std::string spec_text, ContainerSpecJson(c));
  json spec = json::parse(spec_text, nullptr, false);
  if (spec.is_discarded() || !spec.is_object())
    return InvalidArgument("container spec is not JSON");
  if (!f.user.empty()) {
    BERTH_TRY(WithContainerRoot(session, c, [&](const std::optional<std::string>& root) {
      return oci::WithUser(spec, f.user, root);
    }));
  }
  json process = spec.value("process", json::object());
  if (f.tty) {
    process["terminal"] = true;
  } else {
    process.erase("terminal");
  }
  process["args"] = cmd;
  if (!f.cwd.empty()) process["cwd"] = f.cwd;
  BERTH_ASSIGN_OR_RETURN(berth::Task task, LoadTask(session, id));
  return ExecProcess(task, f.exec_id, process, f.tty, f.detach,
                     {.null_io = false, .log_uri = f.log_uri, .fifo_dir = f.fifo_dir});
}

Result<int> StartAction(App& app, const StartTaskOptions& o, const std::string& id) {
  BERTH_TRY(RequireId(id));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(session, id));
  return StartTask(session, c, o);
}

Result<int> AttachAction(App& app, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(session, id));
  return AttachTask(session, c);
}

}  // namespace

void AddTasksCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("tasks", "manage tasks");
  group->alias("t");
  group->alias("task");
  group->require_subcommand(1);
  {
    auto* cmd = group->add_subcommand("attach", "attach to the IO of a running container");
    auto id = std::make_shared<std::string>();
    cmd->add_option("container", *id, "CONTAINER");
    SetCodeAction(cmd, [&app, id]() { return AttachAction(app, *id); });
  }
  {
    auto* cmd = group->add_subcommand("delete", "delete one or more tasks");
    cmd->alias("del");
    cmd->alias("remove");
    cmd->alias("rm");
    auto force = std::make_shared<bool>(false);
    auto exec_id = std::make_shared<std::string>();
    auto ids = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("-f,--force", *force, "force delete task process");
    cmd->add_option("--exec-id", *exec_id, "process ID to kill");
    cmd->add_option("containers", *ids, "CONTAINER [CONTAINER, ...]");
    SetCodeAction(cmd, [&app, force, exec_id, ids]() -> Result<int> {
      int code = 0;
      BERTH_TRY(DeleteAction(app, *force, *exec_id, *ids, &code));
      return code;
    });
  }
  {
    auto* cmd = group->add_subcommand(
        "exec",
        "execute additional processes in an existing container\n  berth tasks exec "
        "[flags] CONTAINER CMD [ARG...]");
    auto f = std::make_shared<ExecFlags>();
    cmd->add_option("--cwd", f->cwd, "working directory of the new process");
    cmd->add_flag("-t,--tty", f->tty, "allocate a TTY for the container");
    cmd->add_flag("-d,--detach", f->detach, "detach from the task after it has started execution");
    cmd->add_option("--exec-id", f->exec_id, "exec specific id for the process (required)");
    cmd->add_option("--fifo-dir", f->fifo_dir, "directory used for storing IO FIFOs");
    cmd->add_option("--log-uri", f->log_uri, "log uri for custom shim logging");
    cmd->add_option("--user", f->user, "user id or name");
    cmd->prefix_command();
    cmd->fallthrough(false);
    cmd->add_flag("-i,--interactive", f->interactive,
                  "keep stdin attached (it always is, as with ctr; for docker's -it)");
    SetCodeAction(cmd, [&app, f, cmd]() {
      RequireKnownFlags(cmd->remaining());
      return ExecAction(app, *f, cmd->remaining());
    });
  }
  {
    auto* cmd = group->add_subcommand("kill", "signal a container (default: SIGTERM)");
    auto signal = std::make_shared<std::string>();
    auto exec_id = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    auto id = std::make_shared<std::string>();
    cmd->add_option("-s,--signal", *signal, "signal to send to the container");
    cmd->add_option("--exec-id", *exec_id, "process ID to kill");
    cmd->add_flag("-a,--all", *all, "send signal to all processes inside the container");
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, signal, exec_id, all, id]() -> Status {
      return KillAction(app, *signal, *exec_id, *all, *id);
    });
  }
  {
    auto* cmd = group->add_subcommand(
        "stop", "stop a task: its stop signal (SIGTERM), then SIGKILL after --timeout");
    auto timeout = std::make_shared<std::string>("10s");
    auto id = std::make_shared<std::string>();
    cmd->add_option("-t,--timeout", *timeout, "how long to wait before SIGKILL")
        ->capture_default_str();
    cmd->add_option("container", *id, "CONTAINER")->required();
    SetAction(cmd, [&app, timeout, id]() -> Status { return StopAction(app, *id, *timeout); });
  }
  {
    auto* cmd = group->add_subcommand("list", "list tasks");
    cmd->alias("ls");
    auto quiet = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    cmd->add_flag("-q,--quiet", *quiet, "print only the task id");
    AddFormatFlag(cmd, format);
    SetAction(cmd, [&app, quiet, format]() -> Status { return ListAction(app, *quiet, *format); });
  }
  {
    auto* cmd = group->add_subcommand(
        "metrics", "get a single data point of metrics for a task with the built-in Linux runtime");
    cmd->alias("metric");
    auto format = std::make_shared<std::string>("table");
    auto id = std::make_shared<std::string>();
    cmd->add_option("--format", *format, "\"table\" or \"json\"")->capture_default_str();
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, format, id]() -> Status { return MetricsAction(app, *format, *id); });
  }
  {
    auto* cmd = group->add_subcommand("pause", "pause an existing container");
    auto id = std::make_shared<std::string>();
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, id]() -> Status { return PauseResumeAction(app, *id, true); });
  }
  {
    auto* cmd = group->add_subcommand("ps", "list processes for container");
    auto id = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("table");
    AddFormatFlag(cmd, format);
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, format, id]() -> Status { return PsAction(app, *format, *id); });
  }
  {
    auto* cmd = group->add_subcommand("resume", "resume a paused container");
    auto id = std::make_shared<std::string>();
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, id]() -> Status { return PauseResumeAction(app, *id, false); });
  }
  {
    auto* cmd = group->add_subcommand("start", "start a container that has been created");
    auto o = std::make_shared<StartTaskOptions>();
    auto id = std::make_shared<std::string>();
    cmd->add_flag("--null-io", o->io.null_io, "send all IO to /dev/null");
    cmd->add_option("--log-uri", o->io.log_uri, "log uri");
    cmd->add_option("--fifo-dir", o->io.fifo_dir, "directory used for storing IO FIFOs");
    cmd->add_option("--pid-file", o->pid_file, "file path to write the task's pid");
    cmd->add_flag("-d,--detach", o->detach, "detach from the task after it has started execution");
    cmd->add_flag("--no-pivot", o->no_pivot, "disable use of pivot-root (linux only)");
    cmd->add_option("container", *id, "CONTAINER");
    SetCodeAction(cmd, [&app, o, id]() { return StartAction(app, *o, *id); });
  }
  {
    auto* cmd = group->add_subcommand(
        "update", "update the resources of a running task (berth; not in ctr 1.6)");
    auto f = std::make_shared<UpdateFlags>();
    auto id = std::make_shared<std::string>();
    cmd->add_option("--memory-limit", f->memory_limit, "memory limit (in bytes)");
    cmd->add_option("--cpu-quota", f->cpu_quota, "CFS quota (microseconds per period)");
    cmd->add_option("--cpu-period", f->cpu_period, "CFS period (microseconds)");
    cmd->add_option("--cpu-shares", f->cpu_shares, "cpu shares");
    cmd->add_option("--pids-limit", f->pids_limit, "maximum number of processes");
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, f, id]() -> Status { return UpdateAction(app, *f, *id); });
  }
}

}  // namespace berth::cli
