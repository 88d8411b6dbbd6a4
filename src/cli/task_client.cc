// ctr's foreground task loop (tasks.NewTask + run/start's wait, signal and resize handling) over
// the client library's Task and Process, shared by `run`, `tasks start|exec|attach`.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cio.h"
#include "cli/run.h"
#include "client/lib_internal.h"
#include "common/fs.h"
#include "common/log.h"

namespace berth::cli {
namespace {

using json = nlohmann::json;

// Signal names as Go's syscall / moby's signal map (without the SIG prefix).
constexpr std::pair<const char*, int> kSignals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

Status WritePidFile(const std::string& path, int pid) {
  std::string abs = path;
  if (!abs.empty() && abs[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr) abs = std::string(cwd) + "/" + abs;
  }
  return fs::WriteFileAtomic(abs, std::to_string(pid), 0666);
}

}  // namespace

Result<int> ParseSignal(std::string_view text) {
  std::string raw(text);
  if (!raw.empty() &&
      std::all_of(raw.begin(), raw.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int n = raw.size() > 9 ? 0 : std::stoi(raw);
    if (n == 0) return Unknown(fmt::format("invalid signal: {}", text));
    return n;
  }
  std::string up;
  for (char c : raw) up += static_cast<char>((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
  if (up.starts_with("SIG")) up = up.substr(3);
  for (const auto& [name, num] : kSignals) {
    if (up == name) return num;
  }
  return Unknown(fmt::format("invalid signal: {}", text));
}

void SetCodeAction(CLI::App* cmd, std::function<Result<int>()> action) {
  cmd->callback([action = std::move(action)] {
    // Before any RPC: gRPC's threads must inherit the mask, or a forwarded signal could be
    // delivered to one of them with its default action.
    BlockForwardedSignals();
    int code = 0;
    {
      Result<int> r = action();
      if (!r) {
        std::fprintf(stderr, "berth: %s\n", r.error().ToString().c_str());
        code = 1;
      } else {
        code = *r;
      }
    }
    std::fflush(stdout);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

// ---- Tasks through the client library ----

berth::Client LibClient(const Session& session) { return detail::ClientOverSession(session); }

berth::Container LibContainer(const Session& session, const containers_api::Container& c) {
  return berth::Container(LibClient(session).State(), detail::ContainerFromProto(c));
}

Result<berth::Task> LoadTask(const Session& session, const std::string& id) {
  containers_api::Container c;
  c.set_id(id);
  return LibContainer(session, c).LoadTask();
}

// ---- The foreground loop ----

Status WithContainerRoot(const Session& session, const containers_api::Container& c,
                         const std::function<Status(const std::optional<std::string>&)>& fn) {
  if (c.snapshot_key().empty() || c.snapshotter().empty()) return fn(std::nullopt);
  SnapshotClient snapshots(session, c.snapshotter());
  BERTH_ASSIGN_OR_RETURN(auto mounts, snapshots.Mounts(c.snapshot_key()));
  // Go's mount.WithTempMount: a fresh directory in os.TempDir(), removed afterwards.
  const char* tmp = std::getenv("TMPDIR");
  std::string tmp_root = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  return mount::WithTempMount(mount::ReadonlyMounts(std::move(mounts)), tmp_root,
                              [&](const std::string& root) { return fn(root); });
}

namespace {

// The stdio ctr's NewTask/exec wire: none, a log URI (a bare path is a file), or FIFOs copied
// to and from this process's stdio.
Result<berth::cio::Creator> IoCreator(const TaskIoOptions& o, bool tty) {
  if (tty) {
    if (o.null_io) return Unknown("tty and null-io cannot be used together");
    if (!o.log_uri.empty()) return Unknown("can't use log-uri with tty");
  }
  if (o.null_io) return berth::cio::NullIO();
  if (!o.log_uri.empty()) {
    std::string uri = o.log_uri;
    if (uri.find("://") == std::string::npos) uri = "file://" + uri;
    return berth::cio::LogUri(uri);
  }
  return berth::cio::Stdio({.terminal = tty, .fifo_dir = o.fifo_dir});
}

// While the process runs in the foreground: terminal size or forwarded signals.
Result<std::unique_ptr<SignalLoop>> Relay(const berth::Process& process, bool tty) {
  auto resize = [&process] {
    auto size = TerminalSize(0);
    if (!size) {
      log::L().WithError(size.error()).Error("get pty size");
      return;
    }
    if (Status st = process.Resize(size->width, size->height); !st) {
      log::L().WithError(st.error()).Error("resize pty");
    }
  };
  if (tty) resize();
  // Signals are blocked since the command began (SetCodeAction), so they are forwarded with a
  // terminal too: unlike ctr, which dies of them and leaves the task running.
  auto gone = std::make_shared<std::atomic<bool>>(false);
  return SignalLoop::Start(ForwardedSignals(), [&process, gone, tty, resize](int sig) {
    if (tty && sig == SIGWINCH) {
      resize();
      return;
    }
    if (*gone) return;
    if (Status st = process.Kill(sig); !st) {
      if (st.error().Is(Errc::kNotFound)) {
        *gone = true;  // as ctr: stop forwarding once the process is gone
        return;
      }
      log::L().WithError(st.error()).Error(fmt::format("forward signal {}", sig));
    }
  });
}

}  // namespace

Result<int> StartTask(const Session& session, const containers_api::Container& container,
                      const StartTaskOptions& options) {
  BERTH_ASSIGN_OR_RETURN(std::string spec_text, ContainerSpecJson(container));
  json spec = json::parse(spec_text, nullptr, false);
  bool tty =
      spec.is_object() && spec.contains("process") && spec["process"].value("terminal", false);

  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    if (options.io.null_io) return Unknown("tty and null-io cannot be used together");
    BERTH_ASSIGN_OR_RETURN(raw, RawTerminal::Make(0));
  }
  BERTH_ASSIGN_OR_RETURN(auto io, IoCreator(options.io, tty));
  // container.NewTask: rootfs = the snapshot's mounts, stdio paths, runtime options.
  BERTH_ASSIGN_OR_RETURN(
      berth::Task task,
      LibContainer(session, container).NewTask(io, {.no_pivot_root = options.no_pivot}));

  // Task.Delete lets the output drain first, then removes the task and its FIFOs.
  std::optional<berth::ExitWaiter> waiter;
  if (!options.detach) {
    auto w = task.Wait();
    if (!w) {
      (void)task.Delete();
      return std::move(w).error();
    }
    waiter = std::move(*w);
  }
  if (!options.pid_file.empty()) {
    if (Status st = WritePidFile(options.pid_file, static_cast<int>(task.Pid())); !st) {
      if (!options.detach) (void)task.Delete();
      return std::move(st).error();
    }
  }
  if (auto started = task.Start(); !started) {
    if (!options.detach) {
      waiter.reset();
      (void)task.Delete();
    }
    return std::move(started).error();
  }
  if (options.detach) {
    if (berth::cio::IO* stdio = task.IO()) stdio->Detach();
    return 0;
  }
  BERTH_ASSIGN_OR_RETURN(auto relay, Relay(task, tty));
  auto status = waiter->Get();
  relay.reset();
  if (!status) {
    (void)task.Delete();
    return std::move(status).error();
  }
  BERTH_TRY(task.Delete());
  return static_cast<int>(status->code);
}

// `tasks exec`: ctr's exec over an existing task.
Result<int> ExecProcess(const berth::Task& task, const std::string& exec_id,
                        const json& process_spec, bool tty, bool detach,
                        const TaskIoOptions& io_options) {
  if (tty && !io_options.log_uri.empty()) return Unknown("can't use log-uri with tty");
  if (!io_options.log_uri.empty() && !io_options.fifo_dir.empty()) {
    return Unknown("can't use log-uri with fifo-dir");
  }
  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    BERTH_ASSIGN_OR_RETURN(raw, RawTerminal::Make(0));
  }
  BERTH_ASSIGN_OR_RETURN(auto io, IoCreator(io_options, tty));
  BERTH_ASSIGN_OR_RETURN(berth::Process process, task.Exec(exec_id, process_spec, io));
  std::optional<berth::ExitWaiter> waiter;
  if (auto w = process.Wait(); !w) {
    if (!detach) (void)process.Delete();
    return std::move(w).error();
  } else {
    waiter = std::move(*w);
  }
  if (auto started = process.Start(); !started) {
    waiter.reset();
    if (!detach) (void)process.Delete();
    return std::move(started).error();
  }
  if (detach) {
    waiter.reset();
    if (berth::cio::IO* stdio = process.IO()) stdio->Detach();
    return 0;
  }
  BERTH_ASSIGN_OR_RETURN(auto relay, Relay(process, tty));
  auto status = waiter->Get();
  relay.reset();
  // ctr defers process.Delete (its result is not checked) and returns the exit status.
  (void)process.Delete();
  if (!status) return std::move(status).error();
  return static_cast<int>(status->code);
}

// `tasks attach`: the FIFOs the task was created with, as cio.NewAttach(cio.WithStdio).
Result<int> AttachTask(const Session& session, const containers_api::Container& container) {
  BERTH_ASSIGN_OR_RETURN(std::string spec_text, ContainerSpecJson(container));
  json spec = json::parse(spec_text, nullptr, false);
  bool tty =
      spec.is_object() && spec.contains("process") && spec["process"].value("terminal", false);
  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    BERTH_ASSIGN_OR_RETURN(raw, RawTerminal::Make(0));
  }
  BERTH_ASSIGN_OR_RETURN(berth::Task task,
                         LibContainer(session, container).LoadTask(berth::cio::AttachStdio()));
  BERTH_ASSIGN_OR_RETURN(auto waiter, task.Wait());
  BERTH_ASSIGN_OR_RETURN(auto relay, Relay(task, tty));
  auto status = waiter.Get();
  relay.reset();
  (void)task.Delete();  // ctr: defer task.Delete(ctx)
  if (!status) return std::move(status).error();
  return static_cast<int>(status->code);
}

}  // namespace berth::cli
