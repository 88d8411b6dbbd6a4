#include "shim/runc.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "shim/spawn.h"

namespace berth::shim {

std::vector<std::string> Runc::Args(const std::vector<std::string>& command) const {
  std::vector<std::string> args{config_.binary.empty() ? "runc" : config_.binary};
  if (!config_.root.empty()) {
    args.insert(args.end(), {"--root", config_.root});
  }
  if (!config_.log_path.empty()) {
    args.insert(args.end(), {"--log", config_.log_path, "--log-format", "json"});
  }
  if (config_.systemd_cgroup) {
    args.emplace_back("--systemd-cgroup");
  }
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

std::vector<std::string> CreateCommand(const std::string& id, const CreateOpts& opts) {
  std::vector<std::string> cmd{"create", "--bundle", opts.bundle};
  if (!opts.pid_file.empty()) {
    cmd.insert(cmd.end(), {"--pid-file", opts.pid_file});
  }
  if (!opts.console_socket.empty()) {
    cmd.insert(cmd.end(), {"--console-socket", opts.console_socket});
  }
  if (opts.no_pivot) {
    cmd.emplace_back("--no-pivot");
  }
  if (opts.no_new_keyring) {
    cmd.emplace_back("--no-new-keyring");
  }
  cmd.push_back(id);
  return cmd;
}

std::vector<std::string> ExecCommand(const std::string& id, const ExecOpts& opts) {
  std::vector<std::string> cmd{"exec", "--process", opts.process_file, "--detach"};
  if (!opts.pid_file.empty()) {
    cmd.insert(cmd.end(), {"--pid-file", opts.pid_file});
  }
  if (!opts.console_socket.empty()) {
    cmd.insert(cmd.end(), {"--console-socket", opts.console_socket});
  }
  cmd.push_back(id);
  return cmd;
}

std::vector<std::string> KillCommand(const std::string& id, int signal, bool all) {
  std::vector<std::string> cmd{"kill"};
  if (all) {
    cmd.emplace_back("--all");
  }
  cmd.push_back(id);
  cmd.push_back(std::to_string(signal));
  return cmd;
}

std::vector<std::string> DeleteCommand(const std::string& id, bool force) {
  std::vector<std::string> cmd{"delete"};
  if (force) {
    cmd.emplace_back("--force");
  }
  cmd.push_back(id);
  return cmd;
}

std::string LastRuntimeError(const std::string& log_json) {
  std::string last;
  size_t start = 0;
  while (start < log_json.size()) {
    size_t end = log_json.find('\n', start);
    if (end == std::string::npos) {
      end = log_json.size();
    }
    std::string_view line(log_json.data() + start, end - start);
    start = end + 1;
    if (line.empty()) {
      continue;
    }
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      continue;
    }
    auto level = j.find("level");
    auto msg = j.find("msg");
    if (level != j.end() && level->is_string() && *level == "error" && msg != j.end() &&
        msg->is_string()) {
      last = msg->get<std::string>();
    }
  }
  return last;
}

Result<std::vector<int>> ParsePsOutput(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) {
    return Unknown("runc ps: unexpected output: " + json);
  }
  std::vector<int> pids;
  for (const auto& v : j) {
    if (!v.is_number_integer()) {
      return Unknown("runc ps: unexpected output: " + json);
    }
    pids.push_back(v.get<int>());
  }
  return pids;
}

Result<int> ReadPidFile(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  size_t b = text.find_first_not_of(" \t\r\n");
  size_t e = text.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) {
    return InvalidArgument("pid file " + path + " is empty");
  }
  std::string digits = text.substr(b, e - b + 1);
  char* end = nullptr;
  long v = std::strtol(digits.c_str(), &end, 10);  // NOLINT(google-runtime-int)
  if (end == nullptr || *end != '\0' || v <= 0) {
    return InvalidArgument("pid file " + path + ": bad pid \"" + digits + "\"");
  }
  return static_cast<int>(v);
}

Result<Runc::Output> Runc::Run(const std::vector<std::string>& command, const std::string& input,
                               const StdioFds* stdio, bool combined) const {
  SpawnOptions so{.argv = Args(command), .parent_death_signal = SIGKILL};
  fs::UniqueFd out_r;
  fs::UniqueFd in_w;
  {
    fs::UniqueFd out_w;
    fs::UniqueFd in_r;
    if (stdio != nullptr) {
      so.fds = *stdio;
    } else {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) {
        return ErrnoError(errno, "pipe");
      }
      out_r.Reset(p[0]);
      out_w.Reset(p[1]);
      so.fds.emplace_back(1, out_w.Get());
      if (combined) {
        so.fds.emplace_back(2, out_w.Get());
      }
      if (!input.empty()) {
        if (::pipe2(p, O_CLOEXEC) != 0) {
          return ErrnoError(errno, "pipe");
        }
        in_r.Reset(p[0]);
        in_w.Reset(p[1]);
        so.fds.emplace_back(0, in_r.Get());
      }
    }
    BERTH_ASSIGN_OR_RETURN(pid_t pid, Spawn(so));
    out_w.Reset();
    in_r.Reset();
    Output result;
    // Feed stdin and drain stdout together so neither side can block the other.
    size_t written = 0;
    if (in_w.Valid()) {
      ::fcntl(in_w.Get(), F_SETFL, O_NONBLOCK);
    }
    char buf[4096];
    while (out_r.Valid() || in_w.Valid()) {
      struct pollfd pfds[2];
      int n = 0;
      int out_idx = -1;
      int in_idx = -1;
      if (out_r.Valid()) {
        pfds[n] = {.fd = out_r.Get(), .events = POLLIN};
        out_idx = n++;
      }
      if (in_w.Valid()) {
        pfds[n] = {.fd = in_w.Get(), .events = POLLOUT};
        in_idx = n++;
      }
      if (::poll(pfds, n, -1) < 0) {
        if (errno == EINTR) {
          continue;
        }
        break;
      }
      if (out_idx >= 0 && pfds[out_idx].revents != 0) {
        ssize_t r = ::read(out_r.Get(), buf, sizeof(buf));
        if (r > 0) {
          result.output.append(buf, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          out_r.Reset();
        }
      }
      if (in_idx >= 0 && pfds[in_idx].revents != 0) {
        ssize_t w = ::write(in_w.Get(), input.data() + written, input.size() - written);
        if (w > 0) {
          written += static_cast<size_t>(w);
        }
        if ((w < 0 && errno != EINTR && errno != EAGAIN) || written == input.size()) {
          in_w.Reset();
        }
      }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        return ErrnoError(errno, "wait for " + so.argv[0]);
      }
    }
    result.exit_code = ExitCodeFromWaitStatus(status);
    return result;
  }
}

Error Runc::CommandError(const std::string& what, const Output& out) const {
  std::string msg;
  if (!config_.log_path.empty()) {
    if (auto log = fs::ReadFile(config_.log_path)) {
      msg = LastRuntimeError(*log);
    }
  }
  if (msg.empty()) {
    std::string output = out.output;
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) {
      output.pop_back();
    }
    msg = out.exit_code > 128 ? "signal: " + std::string(strsignal(out.exit_code - 128))
                              : "exit status " + std::to_string(out.exit_code);
    if (!output.empty()) {
      msg += ": " + output;
    }
  }
  return Unknown(what.empty() ? msg : what + ": " + msg);
}

Status Runc::RunChecked(const std::vector<std::string>& command, const std::string& what) const {
  BERTH_ASSIGN_OR_RETURN(Output out, Run(command, "", nullptr, true));
  if (out.exit_code != 0) {
    return CommandError(what, out);
  }
  return Ok();
}

Status Runc::Create(const std::string& id, const CreateOpts& opts, const StdioFds& stdio) const {
  auto args = CreateCommand(id, opts);
  BERTH_ASSIGN_OR_RETURN(Output out, Run(args, "", &stdio, false));
  if (out.exit_code != 0) {
    return CommandError("OCI runtime create failed", out);
  }
  return Ok();
}

Status Runc::Start(const std::string& id) const {
  return RunChecked({"start", id}, "OCI runtime start failed");
}

Status Runc::Exec(const std::string& id, const ExecOpts& opts, const StdioFds& stdio) const {
  auto args = ExecCommand(id, opts);
  BERTH_ASSIGN_OR_RETURN(Output out, Run(args, "", &stdio, false));
  if (out.exit_code != 0) {
    return CommandError("OCI runtime exec failed", out);
  }
  return Ok();
}

Status Runc::Kill(const std::string& id, int signal, bool all) const {
  auto args = KillCommand(id, signal, all);
  BERTH_ASSIGN_OR_RETURN(Output out, Run(args, "", nullptr, true));
  if (out.exit_code != 0) {
    // The kill error classification (pkg/process/utils.go checkKillError) looks at go-runc's
    // text, so keep the runtime's output rather than log.json.
    std::string text = out.output;
    if (auto log = fs::ReadFile(config_.log_path); log && !LastRuntimeError(*log).empty()) {
      text += " " + LastRuntimeError(*log);
    }
    return Unknown("exit status " + std::to_string(out.exit_code) + ": " + text);
  }
  return Ok();
}

Status Runc::Delete(const std::string& id, bool force) const {
  auto args = DeleteCommand(id, force);
  BERTH_ASSIGN_OR_RETURN(Output out, Run(args, "", nullptr, true));
  if (out.exit_code != 0) {
    std::string text = out.output;
    if (auto log = fs::ReadFile(config_.log_path); log && !LastRuntimeError(*log).empty()) {
      text = LastRuntimeError(*log);
    }
    return Unknown(text);
  }
  return Ok();
}

Status Runc::Pause(const std::string& id) const { return RunChecked({"pause", id}, ""); }

Status Runc::Resume(const std::string& id) const { return RunChecked({"resume", id}, ""); }

Result<std::vector<int>> Runc::Ps(const std::string& id) const {
  BERTH_ASSIGN_OR_RETURN(Output out, Run({"ps", "--format", "json", id}, "", nullptr, false));
  if (out.exit_code != 0) {
    return CommandError("", out);
  }
  return ParsePsOutput(out.output);
}

Status Runc::Update(const std::string& id, const std::string& resources_json) const {
  BERTH_ASSIGN_OR_RETURN(Output out,
                         Run({"update", "--resources", "-", id}, resources_json, nullptr, true));
  if (out.exit_code != 0) {
    return CommandError("", out);
  }
  return Ok();
}

}  // namespace berth::shim
