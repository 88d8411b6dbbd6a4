// The streaming rpcs (Exec, Attach, PortForward; reference/cri.md §12) and what runs when the
// client comes to the URL they return: a streaming exec (ExecSync's process with the client's
// stdio and an optional terminal), an attach to the container's stdio, a TCP connection dialled
// inside the pod's network namespace.
//
// Threads: the streaming server calls the Runtime on the stdio io_context; anything that talks
// to the shim is posted to the service's pool; dials run on a short-lived thread of their own
// (setns changes the calling thread's namespace).
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/timeutil.h"
#include "cri/io/exec_io.h"
#include "cri/service.h"

namespace berth::cri {

// ---- rpcs

Status Service::CheckStreamable(const std::shared_ptr<Container>& c) const {
  std::lock_guard lock(c->mu);
  auto state = c->status.State();
  if (state != v1::CONTAINER_RUNNING || c->task == nullptr) {
    return FailedPrecondition(
        fmt::format("container is in {} state", v1::ContainerState_Name(state)));
  }
  return Ok();
}

namespace {

Status CheckStreams(const std::string& id, bool tty, bool in, bool out, bool err) {
  if (id.empty()) return InvalidArgument("missing required container_id");
  if (tty && err) return InvalidArgument("tty and stderr cannot both be true");
  if (!in && !out && !err) {
    return InvalidArgument("one of stdin, stdout, or stderr must be set");
  }
  return Ok();
}

}  // namespace

Status Service::Exec(const v1::ExecRequest& req, v1::ExecResponse* resp) {
  if (stream_server_ == nullptr) return Unavailable("the streaming server is not running");
  BERTH_TRY(CheckStreams(req.container_id(), req.tty(), req.stdin(), req.stdout(), req.stderr()));
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  BERTH_TRY(CheckStreamable(c));
  if (req.cmd().empty()) return InvalidArgument("cmd cannot be empty");
  BERTH_ASSIGN_OR_RETURN(std::string url, stream_server_->GetExecUrl(streaming::ExecRequest{
                                              .container_id = c->meta.id,
                                              .cmd = {req.cmd().begin(), req.cmd().end()},
                                              .tty = req.tty(),
                                              .stdin = req.stdin(),
                                              .stdout = req.stdout(),
                                              .stderr = req.stderr()}));
  resp->set_url(std::move(url));
  return Ok();
}

Status Service::Attach(const v1::AttachRequest& req, v1::AttachResponse* resp) {
  if (stream_server_ == nullptr) return Unavailable("the streaming server is not running");
  BERTH_TRY(CheckStreams(req.container_id(), req.tty(), req.stdin(), req.stdout(), req.stderr()));
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  BERTH_TRY(CheckStreamable(c));
  BERTH_ASSIGN_OR_RETURN(std::string url, stream_server_->GetAttachUrl(
                                              streaming::AttachRequest{.container_id = c->meta.id,
                                                                       .tty = req.tty(),
                                                                       .stdin = req.stdin(),
                                                                       .stdout = req.stdout(),
                                                                       .stderr = req.stderr()}));
  resp->set_url(std::move(url));
  return Ok();
}

Status Service::PortForward(const v1::PortForwardRequest& req, v1::PortForwardResponse* resp) {
  if (stream_server_ == nullptr) return Unavailable("the streaming server is not running");
  if (req.pod_sandbox_id().empty()) return InvalidArgument("missing required pod_sandbox_id");
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(req.pod_sandbox_id()));
  {
    std::lock_guard lock(sb->mu);
    if (sb->state != SandboxState::kReady) {
      return FailedPrecondition(fmt::format("sandbox container {:?} is not running", sb->meta.id));
    }
  }
  BERTH_ASSIGN_OR_RETURN(
      std::string url,
      stream_server_->GetPortForwardUrl(streaming::PortForwardRequest{
          .pod_sandbox_id = sb->meta.id, .ports = {req.port().begin(), req.port().end()}}));
  resp->set_url(std::move(url));
  return Ok();
}

// ---- streaming exec

// One streaming exec. Created on the io thread; its steps run on the pool; the streaming
// session's calls arrive on the io thread. `mu` guards the fields both touch.
struct Service::ExecState {
  Service* svc = nullptr;
  std::shared_ptr<runtime::Task> task;
  std::string exec_id;
  streaming::ExecRequest req;
  streaming::CommandOutput out;

  std::mutex mu;
  std::optional<io::ExecIo> eio;
  bool started = false;    // Start returned and Started() was called
  bool cancelled = false;  // the client went away
  bool stdin_eof = false;
  std::optional<std::pair<uint16_t, uint16_t>> pending_resize;
  std::vector<std::pair<std::string, std::function<void()>>> pending_stdin;
  // Both must have come before the end is reported.
  bool output_done = false;
  std::optional<Result<runtime::ExitStatus>> exit;
  bool finished = false;

  // Reports the end once.
  void Finish(streaming::CommandResult result) {
    {
      std::lock_guard lock(mu);
      if (finished) return;
      finished = true;
    }
    out.finish(std::move(result));
  }
};

class Service::StreamExec final : public streaming::RemoteCommand {
 public:
  explicit StreamExec(std::shared_ptr<ExecState> s) : s_(std::move(s)) {}

  void Stdin(std::string data, std::function<void()> done) override {
    std::unique_lock lock(s_->mu);
    if (!s_->eio || s_->cancelled) {
      if (s_->cancelled) {
        lock.unlock();
        done();
        return;
      }
      s_->pending_stdin.emplace_back(std::move(data), std::move(done));
      return;
    }
    Write(*s_->eio, std::move(data), std::move(done));
  }

  void StdinEof() override {
    std::lock_guard lock(s_->mu);
    s_->stdin_eof = true;
    if (s_->started) CloseStdin(s_);
  }

  void Resize(uint16_t w, uint16_t h) override {
    std::lock_guard lock(s_->mu);
    if (!s_->started) {
      s_->pending_resize = {w, h};
      return;
    }
    auto s = s_;
    s->svc->Post([s, w, h] {
      if (auto st = s->task->ResizePty(s->exec_id, w, h); !st) {
        log::L().With("exec", s->exec_id).WithError(st.error()).Info("resize exec pty");
      }
    });
  }

  void Cancel() override {
    std::lock_guard lock(s_->mu);
    if (s_->cancelled) return;
    s_->cancelled = true;
    if (s_->started && !s_->exit) {
      auto s = s_;
      s->svc->Post([s] { (void)s->task->Kill(s->exec_id, SIGKILL, false); });
    }
  }

  static void Write(io::ExecIo& eio, std::string data, std::function<void()> done) {
    auto d = std::make_shared<std::function<void()>>(std::move(done));
    if (auto st = eio.WriteStdin(std::move(data), [d](Status) { (*d)(); }); !st) (*d)();
  }

  // s->mu held. containerd closes an exec's stdin at the client's EOF (stdin-once) unless it
  // has a terminal. Closing our end of the FIFO once the queued data is in is enough: the shim
  // reads the rest, sees EOF and closes the process's stdin. (A CloseIO to the shim now would
  // race with that copy and could cut the data short.)
  static void CloseStdin(const std::shared_ptr<ExecState>& s) {
    if (s->req.tty || !s->eio) return;
    s->eio->CloseStdin();
  }

 private:
  std::shared_ptr<ExecState> s_;
};

void Service::RunStreamExec(const std::shared_ptr<ExecState>& s) {
  auto fail = [&](Error e) { s->Finish({.error = std::move(e)}); };
  auto c = GetContainer(s->req.container_id);
  if (!c) return fail(std::move(c).error());
  if (auto st = CheckStreamable(*c); !st) return fail(std::move(st).error());
  {
    std::lock_guard lock((*c)->mu);
    s->task = (*c)->task;
  }
  auto spec = ContainerSpecOf((*c)->meta.id);
  if (!spec) return fail(std::move(spec).error());
  nlohmann::json process = spec->value("process", nlohmann::json::object());
  process["args"] = s->req.cmd;
  process["terminal"] = s->req.tty;
  if (s->req.tty) {
    auto& env = process["env"];
    if (!env.is_array()) env = nlohmann::json::array();
    bool has_term = false;
    for (auto& e : env) {
      if (e.is_string() && e.get<std::string>().starts_with("TERM=")) {
        e = "TERM=xterm";
        has_term = true;
      }
    }
    if (!has_term) env.push_back("TERM=xterm");
  }

  auto out = s->out;
  io::ExecIoOptions opts{.stdin = s->req.stdin,
                         .tty = s->req.tty,
                         .max_output = 0,
                         .on_output = [out](io::StreamType t, std::string_view d) {
                           out.write(t == io::StreamType::kStderr ? 2 : 1, d);
                         }};
  auto eio = io::ExecIo::Create(io_, ContainerStateDir((*c)->meta.id) + "/io", s->exec_id, opts);
  if (!eio) return fail(std::move(eio).error().Wrap("failed to create exec io"));
  runtime::ExecOpts eo;
  eo.spec.set_type_url(std::string(oci::kProcessTypeUrl));
  eo.spec.set_value(process.dump());
  eo.stdin_path = eio->Fifos().stdin_path;
  eo.stdout_path = eio->Fifos().stdout_path;
  eo.stderr_path = eio->Fifos().stderr_path;
  eo.terminal = s->req.tty;
  {
    std::lock_guard lock(s->mu);
    s->eio.emplace(std::move(*eio));
    for (auto& [data, done] : s->pending_stdin) {
      StreamExec::Write(*s->eio, std::move(data), std::move(done));
    }
    s->pending_stdin.clear();
    if (s->cancelled) {
      (void)s->eio->Close();
      return fail(Error(Errc::kCanceled, "the client went away"));
    }
  }
  auto close_io = [s] {
    std::lock_guard lock(s->mu);
    if (s->eio) (void)s->eio->Close();
  };
  if (auto st = s->task->Exec(s->exec_id, eo); !st) {
    close_io();
    return fail(std::move(st).error().Wrap(fmt::format("failed to create exec {:?}", s->exec_id)));
  }
  auto life = life_;
  // The end: the exit and EOF on every output, in either order.
  auto maybe_done = [this, life, s] {
    {
      std::lock_guard lock(s->mu);
      if (!s->exit || !s->output_done) return;
    }
    PostIfAlive(life, this, [s] {
      if (auto d = s->task->DeleteProcess(s->exec_id); !d && !d.error().Is(Errc::kNotFound)) {
        log::L().With("exec", s->exec_id).WithError(d.error()).Warn("delete exec process");
      }
      Result<runtime::ExitStatus> exit = Unknown("no exit");
      {
        std::lock_guard lock(s->mu);
        if (s->eio) (void)s->eio->Close();
        exit = std::move(*s->exit);
      }
      if (!exit) {
        s->Finish({.error = std::move(exit).error().Wrap("failed to wait for exec process")});
      } else {
        s->Finish({.exit_code = static_cast<int>(exit->status)});
      }
    });
  };
  s->task->Wait(s->exec_id, [s, maybe_done](Result<runtime::ExitStatus> r) {
    {
      std::lock_guard lock(s->mu);
      s->exit = std::move(r);
    }
    maybe_done();
  });
  if (auto started = s->task->Start(s->exec_id); !started) {
    if (auto d = s->task->DeleteProcess(s->exec_id); !d && !d.error().Is(Errc::kNotFound)) {
      log::L().With("exec", s->exec_id).WithError(d.error()).Warn("delete exec process");
    }
    close_io();
    return fail(
        std::move(started).error().Wrap(fmt::format("failed to start exec {:?}", s->exec_id)));
  }
  std::optional<std::pair<uint16_t, uint16_t>> resize;
  {
    std::lock_guard lock(s->mu);
    s->started = true;
    s->eio->Started();
    s->eio->OnDone([s, maybe_done](Status) {
      {
        std::lock_guard lock(s->mu);
        s->output_done = true;
      }
      maybe_done();
    });
    resize = s->pending_resize;
    if (s->stdin_eof) StreamExec::CloseStdin(s);
    if (s->cancelled && !s->exit) (void)s->task->Kill(s->exec_id, SIGKILL, false);
  }
  if (resize) (void)s->task->ResizePty(s->exec_id, resize->first, resize->second);
}

// ---- attach

class Service::StreamAttach final : public streaming::RemoteCommand {
 public:
  StreamAttach(Service* svc, std::shared_ptr<Container> c, streaming::AttachRequest req,
               uint64_t sink)
      : svc_(svc), c_(std::move(c)), req_(std::move(req)), sink_(sink) {}

  void Stdin(std::string data, std::function<void()> done) override {
    auto d = std::make_shared<std::function<void()>>(std::move(done));
    if (!req_.stdin || !c_->io->HasStdin()) return (*d)();
    if (auto st = c_->io->WriteStdin(std::move(data), [d](Status) { (*d)(); }); !st) (*d)();
  }

  // As for exec: our FIFO end closes once the queued data is in; the shim sees EOF.
  void StdinEof() override {
    if (!c_->meta.config.stdin_once() || c_->meta.config.tty()) return;
    c_->io->CloseStdin();
  }

  void Resize(uint16_t w, uint16_t h) override {
    std::shared_ptr<runtime::Task> task;
    {
      std::lock_guard lock(c_->mu);
      task = c_->task;
    }
    if (task) svc_->Post([task, w, h] { (void)task->ResizePty("", w, h); });
  }

  void Cancel() override { c_->io->RemoveSink(sink_); }

 private:
  Service* svc_;
  std::shared_ptr<Container> c_;
  streaming::AttachRequest req_;
  uint64_t sink_;
};

// ---- the Runtime the streaming server calls

class Service::StreamRuntime final : public streaming::Runtime {
 public:
  explicit StreamRuntime(Service* svc) : svc_(svc) {}

  std::unique_ptr<streaming::RemoteCommand> Exec(const streaming::ExecRequest& req,
                                                 streaming::CommandOutput out) override {
    auto s = std::make_shared<ExecState>();
    s->svc = svc_;
    s->exec_id = GenerateId();
    s->req = req;
    s->out = std::move(out);
    Service* svc = svc_;
    PostIfAlive(svc_->life_, svc_, [svc, s] { svc->RunStreamExec(s); });
    return std::make_unique<StreamExec>(s);
  }

  std::unique_ptr<streaming::RemoteCommand> Attach(const streaming::AttachRequest& req,
                                                   streaming::CommandOutput out) override {
    auto c = svc_->GetContainer(req.container_id);
    if (c) {
      if (auto st = svc_->CheckStreamable(*c); !st) c = std::move(st).error();
    }
    std::shared_ptr<io::ContainerIo> cio;
    if (c) {
      std::lock_guard lock((*c)->mu);
      cio = (*c)->io;
    }
    if (!c || cio == nullptr) {
      out.finish({.error = c ? Error(Errc::kFailedPrecondition, "container has no io")
                             : std::move(c).error()});
      return nullptr;
    }
    const bool want_out = req.stdout, want_err = req.stderr;
    uint64_t sink = cio->AddSink(
        io::OutputSink{.write =
                           [out, want_out, want_err](io::StreamType t, std::string_view d) {
                             const bool err = t == io::StreamType::kStderr;
                             if ((err && want_err) || (!err && want_out)) out.write(err ? 2 : 1, d);
                             return true;
                           },
                       .close = [out] { out.finish({}); }});
    return std::make_unique<StreamAttach>(svc_, std::move(*c), req, sink);
  }

  void DialPort(const std::string& pod_sandbox_id, uint16_t port,
                std::function<void(Result<int>)> done) override {
    auto sb = svc_->GetSandbox(pod_sandbox_id);
    if (!sb) return done(std::move(sb).error());
    std::string netns;
    {
      std::lock_guard lock((*sb)->mu);
      const bool host_network =
          (*sb)->meta.config.linux().security_context().namespace_options().network() == v1::NODE;
      if (!host_network) netns = (*sb)->meta.netns_path;
      if ((*sb)->state != SandboxState::kReady) {
        return done(FailedPrecondition(
            fmt::format("sandbox container {:?} is not running", (*sb)->meta.id)));
      }
    }
    // setns changes only the calling thread: a thread of its own, gone after the dial.
    {
      std::lock_guard lock(dial_mu_);
      ++dials_;
    }
    std::thread([this, netns, port, id = (*sb)->meta.id, done = std::move(done)] {
      done(DialIn(netns, id, port));
      std::lock_guard lock(dial_mu_);
      if (--dials_ == 0) dial_cv_.notify_all();
    }).detach();
  }

  // Waits for the dials in flight: their callbacks post to the io_context, which must outlive
  // them. Each is bounded by kDialTimeout per address family.
  void WaitForDials() {
    std::unique_lock lock(dial_mu_);
    dial_cv_.wait(lock, [&] { return dials_ == 0; });
  }

 private:
  static Result<int> Connect(int family, uint16_t port) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return ErrnoError(errno, "socket");
    int rc;
    if (family == AF_INET) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    } else {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      a.sin6_addr = in6addr_loopback;
      rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    if (rc != 0 && errno == EINPROGRESS) {
      // A listener with a full backlog leaves the SYN unanswered: bound the wait.
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      rc = ::poll(&p, 1, static_cast<int>(kDialTimeout.count()));
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (rc == 0) {
        errno = ETIMEDOUT;
        rc = -1;
      } else if (rc > 0 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0) {
        errno = soerr;
        rc = soerr == 0 ? 0 : -1;
      } else {
        rc = -1;
      }
    }
    if (rc == 0) {
      int flags = ::fcntl(fd, F_GETFL);
      if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    if (rc != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError(err, family == AF_INET ? fmt::format("dial tcp4 127.0.0.1:{}", port)
                                               : fmt::format("dial tcp6 [::1]:{}", port));
    }
    return fd;
  }

  static Result<int> DialIn(const std::string& netns, const std::string& id, uint16_t port) {
    if (!netns.empty()) {
      int nsfd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0) {
        return ErrnoError(errno, fmt::format("failed to open network namespace {:?}", netns));
      }
      int rc = ::setns(nsfd, CLONE_NEWNET);
      int err = errno;
      ::close(nsfd);
      if (rc != 0) {
        return ErrnoError(err, fmt::format("failed to enter network namespace {:?}", netns));
      }
    }
    auto v4 = Connect(AF_INET, port);
    if (v4) return v4;
    auto v6 = Connect(AF_INET6, port);
    if (v6) return v6;
    return Unknown(
        fmt::format("failed to execute portforward in network namespace {:?}: failed to connect to "
                    "localhost:{} inside namespace {:?}, IPv4: {} IPv6 {}",
                    netns, port, id, v4.error().ToString(), v6.error().ToString()));
  }

  static constexpr std::chrono::milliseconds kDialTimeout{10000};

  Service* svc_;
  std::mutex dial_mu_;
  std::condition_variable dial_cv_;
  int dials_ = 0;  // dial threads running
};

Status Service::StartStreamServer() {
  const Config& cfg = options_.config;
  if (!cfg.enable_tls_streaming) {
    if (!cfg.tls_cert_file.empty()) {
      return InvalidArgument(
          "X509KeyPairStreaming.TLSCertFile is set but EnableTLSStreaming is not set");
    }
    if (!cfg.tls_key_file.empty()) {
      return InvalidArgument(
          "X509KeyPairStreaming.TLSKeyFile is set but EnableTLSStreaming is not set");
    }
  }
  uint32_t port = 0;
  if (!cfg.stream_server_port.empty()) {
    auto [p, ec] =
        std::from_chars(cfg.stream_server_port.data(),
                        cfg.stream_server_port.data() + cfg.stream_server_port.size(), port);
    if (ec != std::errc() || p != cfg.stream_server_port.data() + cfg.stream_server_port.size() ||
        port > 65535) {
      return InvalidArgument(
          fmt::format("stream_server_port {:?} is not a port", cfg.stream_server_port));
    }
  }
  auto idle = ParseGoDuration(cfg.stream_idle_timeout);
  if (!idle) return std::move(idle).error().Wrap("stream_idle_timeout");
  stream_runtime_ = std::make_shared<StreamRuntime>(this);
  streaming::ServerOptions so{
      .address = cfg.stream_server_address.empty() ? "127.0.0.1" : cfg.stream_server_address,
      .port = static_cast<uint16_t>(port),
      .tls = cfg.enable_tls_streaming,
      .tls_cert_file = cfg.tls_cert_file,
      .tls_key_file = cfg.tls_key_file};
  if (*idle > std::chrono::nanoseconds(0)) so.idle_timeout = *idle;
  BERTH_ASSIGN_OR_RETURN(stream_server_,
                         streaming::Server::Start(io_, std::move(so), stream_runtime_.get()));
  log::L()
      .With("tls", cfg.enable_tls_streaming)
      .With("address", stream_server_->Address())
      .With("port", stream_server_->Port())
      .Info("cri streaming server listening");
  return Ok();
}

void Service::StopStreamServer() {
  if (stream_server_ == nullptr) return;
  // The server's connections live on the io thread: take it down there.
  std::promise<void> done;
  asio::post(io_, [&] {
    stream_server_.reset();
    done.set_value();
  });
  done.get_future().wait();
  static_cast<StreamRuntime*>(stream_runtime_.get())->WaitForDials();
}

}  // namespace berth::cri
