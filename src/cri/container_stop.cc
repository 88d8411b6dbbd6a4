// StopContainer and RemoveContainer (containerd 1.6 container_stop.go, container_remove.go;
// reference/cri.md §7).
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "cri/service.h"

namespace berth::cri {
namespace {

// The stop signal's number: "SIGTERM", "TERM" or "15" (containerd's signal.ParseSignal).
Result<uint32_t> ParseSignal(std::string name) {
  if (name.empty()) return SIGTERM;
  if (std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return static_cast<uint32_t>(std::stoul(name));
  }
  for (auto& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (!name.starts_with("SIG")) name = "SIG" + name;
  static const std::pair<const char*, int> kSignals[] = {
      {"SIGHUP", SIGHUP},       {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},   {"SIGILL", SIGILL},
      {"SIGTRAP", SIGTRAP},     {"SIGABRT", SIGABRT}, {"SIGBUS", SIGBUS},     {"SIGFPE", SIGFPE},
      {"SIGKILL", SIGKILL},     {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV},   {"SIGUSR2", SIGUSR2},
      {"SIGPIPE", SIGPIPE},     {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},   {"SIGCHLD", SIGCHLD},
      {"SIGCONT", SIGCONT},     {"SIGSTOP", SIGSTOP}, {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},
      {"SIGTTOU", SIGTTOU},     {"SIGURG", SIGURG},   {"SIGXCPU", SIGXCPU},   {"SIGXFSZ", SIGXFSZ},
      {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH}, {"SIGIO", SIGIO},
      {"SIGPWR", SIGPWR},       {"SIGSYS", SIGSYS}};
  for (const auto& [n, v] : kSignals) {
    if (name == n) return static_cast<uint32_t>(v);
  }
  return InvalidArgument(fmt::format("unknown signal {:?}", name));
}

}  // namespace

Status Service::StopContainer(const CallContext& cc, const v1::StopContainerRequest& req) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  return DoStopContainer(cc, c, req.timeout());
}

Status Service::DoStopContainer(const CallContext& cc, const std::shared_ptr<Container>& c,
                                int64_t timeout_seconds) {
  std::shared_ptr<runtime::Task> task;
  bool send_stop_signal = false;
  {
    std::lock_guard lock(c->mu);
    auto state = c->status.State();
    if (state != v1::CONTAINER_RUNNING && state != v1::CONTAINER_UNKNOWN) return Ok();
    task = c->task;
    if (timeout_seconds > 0 && !c->stop_signal_sent) {
      c->stop_signal_sent = true;  // sent once, even for concurrent calls
      send_stop_signal = true;
    }
  }
  if (task == nullptr) {
    // UNKNOWN without a task (its exit was lost): it is stopped already.
    std::lock_guard lock(c->mu);
    if (c->status.finished_at == 0) {
      c->status.finished_at = UnixNanos(Now());
      c->status.exit_code = 255;
      c->status.reason = "Unknown";
      c->status.unknown = false;
      (void)SaveStatus(*c);
    }
    c->stopped->Fire();
    return Ok();
  }
  const std::string& id = c->meta.id;
  if (timeout_seconds > 0) {
    if (send_stop_signal) {
      std::string name = c->meta.stop_signal.empty() ? "SIGTERM" : c->meta.stop_signal;
      BERTH_ASSIGN_OR_RETURN(uint32_t sig, ParseSignal(name));
      if (auto st = task->Kill("", sig, false); !st && !st.error().Is(Errc::kNotFound)) {
        return std::move(st).error().Wrap(fmt::format("failed to stop container {:?}", id));
      }
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    if (c->stopped->WaitUntil(std::min(until, cc.deadline))) return Ok();
    if (std::chrono::steady_clock::now() >= cc.deadline) {
      return Error(
          Errc::kDeadlineExceeded,
          fmt::format("an error occurs during waiting for container {:?} to be stopped", id));
    }
  }
  if (auto st = task->Kill("", SIGKILL, true); !st && !st.error().Is(Errc::kNotFound)) {
    return std::move(st).error().Wrap(fmt::format("failed to kill container {:?}", id));
  }
  if (!c->stopped->WaitUntil(cc.deadline)) {
    return Error(Errc::kDeadlineExceeded,
                 fmt::format("an error occurs during waiting for container {:?} SIGKILL", id));
  }
  return Ok();
}

Status Service::RemoveContainer(const CallContext& cc, const v1::RemoveContainerRequest& req) {
  auto c = GetContainer(req.container_id());
  if (!c) {
    if (c.error().Is(Errc::kNotFound)) return Ok();
    return std::move(c).error();
  }
  return DoRemoveContainer(cc, *c);
}

Status Service::DoRemoveContainer(const CallContext& cc, const std::shared_ptr<Container>& c) {
  const std::string& id = c->meta.id;
  {
    auto state = c->Status().State();
    if (state == v1::CONTAINER_RUNNING || state == v1::CONTAINER_UNKNOWN) {
      if (auto st = DoStopContainer(cc, c, 0); !st) {
        return std::move(st).error().Wrap(
            fmt::format("failed to forcibly stop container {:?}", id));
      }
    }
  }
  {
    std::lock_guard lock(c->mu);
    if (c->status.removing) {
      return Unknown(fmt::format("container {:?} is in removing state", id));
    }
    if (c->status.starting) {
      return Unknown(fmt::format("container {:?} is in starting state", id));
    }
    c->status.removing = true;
  }
  auto fail = [&](Error e) -> Status {
    std::lock_guard lock(c->mu);
    c->status.removing = false;
    return e;
  };
  // A created container's task (none for containers never started).
  if (auto t = options_.tasks->Get(Ctx(), id); t) {
    if (auto d = options_.tasks->Delete(Ctx(), id); !d && !d.error().Is(Errc::kNotFound)) {
      return fail(std::move(d).error().Wrap("failed to delete task"));
    }
  }
  if (c->io) (void)c->io->Close();
  if (auto st = DeleteRecord(id); !st) {
    return fail(
        std::move(st).error().Wrap(fmt::format("failed to delete containerd container {:?}", id)));
  }
  if (auto st = fs::RemoveAll(ContainerRootDir(id)); !st) {
    return fail(std::move(st).error().Wrap("failed to remove container root directory"));
  }
  if (auto st = fs::RemoveAll(ContainerStateDir(id)); !st) {
    return fail(std::move(st).error().Wrap("failed to remove container state directory"));
  }
  containers_.Remove(id);
  container_names_.Release(c->meta.name);
  {
    std::lock_guard lock(stats_mu_);
    last_cpu_.erase(id);
  }
  return Ok();
}

}  // namespace berth::cri
