// CRI integration: the streaming server (reference/cri.md §12). Exec, Attach and PortForward
// through the URLs the rpcs return, driven by the project's own SPDY and WebSocket clients
// (stream_client.h): output and exit codes, stdin EOF, terminals and resize, attach clients that
// come and go, port-forward of an HTTP server in a pod over many connections, one-time tokens,
// and clients that misbehave or vanish. berthd's streaming server listens on 127.0.0.1 inside
// the environment's network namespace; the clients dial from there (stream::SetDialNetns).
#include <fmt/format.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "cri_fixture.h"
#include "stream_client.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;
using stream::Millis;
using Transport = stream::RemoteCommandOptions::Transport;

class CriStreamingIT : public CriTest {
 protected:
  void SetUp() override {
    CriTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    stream::SetDialNetns(E().Net().Path());
  }
  void TearDown() override {
    stream::SetDialNetns("");
    CriTest::TearDown();
  }

  // A pod with one running busybox container (`command`); its ids.
  struct Pod {
    std::string id;
    v1::PodSandboxConfig config;
    std::string ctr;
  };
  Pod RunBusybox(const std::string& name, const std::vector<std::string>& command,
                 bool stdin = false, bool stdin_once = false, bool tty = false) {
    Pod p;
    p.config = PodConfig(name);
    p.id = RunPod(p.config);
    if (p.id.empty()) return p;
    auto cc = ContainerConfig(name, "busybox", command);
    cc.set_stdin(stdin);
    cc.set_stdin_once(stdin_once);
    cc.set_tty(tty);
    p.ctr = RunContainer(p.id, p.config, cc);
    return p;
  }

  std::string ExecUrl(const std::string& ctr, const std::vector<std::string>& cmd,
                      bool stdin = false, bool tty = false) {
    v1::ExecRequest req;
    req.set_container_id(ctr);
    for (const auto& a : cmd) req.add_cmd(a);
    req.set_stdin(stdin);
    req.set_stdout(true);
    req.set_stderr(!tty);
    req.set_tty(tty);
    v1::ExecResponse resp;
    auto st = Rt().Exec(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    return resp.url();
  }

  std::string AttachUrl(const std::string& ctr, bool stdin, bool tty = false) {
    v1::AttachRequest req;
    req.set_container_id(ctr);
    req.set_stdin(stdin);
    req.set_stdout(true);
    req.set_stderr(!tty);
    req.set_tty(tty);
    v1::AttachResponse resp;
    auto st = Rt().Attach(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    return resp.url();
  }

  std::string PortForwardUrl(const std::string& pod) {
    v1::PortForwardRequest req;
    req.set_pod_sandbox_id(pod);
    v1::PortForwardResponse resp;
    auto st = Rt().PortForward(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    return resp.url();
  }

  // Exec dirs of the container's FIFOs (the container's own stdio dir excluded).
  size_t FifoDirs(const std::string& ctr) {
    return DirEntries(E().CriState() + "/containers/" + ctr + "/io").size();
  }

  // Runs `cmd` through the streaming exec; waits for its end.
  stream::Outcome RunExec(const std::string& ctr, const std::vector<std::string>& cmd,
                          stream::RemoteCommandOptions opts = {}) {
    auto url = ExecUrl(ctr, cmd, opts.stdin, opts.tty);
    auto rc = stream::RemoteCommand::Start(url, opts);
    if (!rc) {
      ADD_FAILURE() << rc.error().ToString();
      return {};
    }
    auto out = (*rc)->Wait(Millis(30000));
    if (!out) {
      ADD_FAILURE() << out.error().ToString();
      return {};
    }
    return *out;
  }
};

TEST_F(CriStreamingIT, RpcsValidateAndReturnOneTimeUrls) {
  auto p = RunBusybox("st-urls", {"sleep", "3600"});
  ASSERT_FALSE(p.ctr.empty());
  static const std::regex kUrl(
      R"(^http://127\.0\.0\.1:\d+/(exec|attach|portforward)/[A-Za-z0-9_-]{8}$)");
  std::string url = ExecUrl(p.ctr, {"true"});
  EXPECT_TRUE(std::regex_match(url, kUrl)) << url;
  std::string url2 = ExecUrl(p.ctr, {"true"});
  EXPECT_NE(url, url2);
  EXPECT_TRUE(std::regex_match(AttachUrl(p.ctr, false), kUrl));
  EXPECT_TRUE(std::regex_match(PortForwardUrl(p.id), kUrl));

  auto code = [&](v1::ExecRequest req) {
    v1::ExecResponse resp;
    return Rt().Exec(Ctx().get(), req, &resp).error_code();
  };
  v1::ExecRequest req;
  req.add_cmd("true");
  req.set_stdout(true);
  EXPECT_EQ(code(req), grpc::StatusCode::INVALID_ARGUMENT);  // no container_id
  req.set_container_id(p.ctr);
  req.set_tty(true);
  req.set_stderr(true);
  EXPECT_EQ(code(req), grpc::StatusCode::INVALID_ARGUMENT);  // tty and stderr
  req.set_tty(false);
  req.set_stderr(false);
  req.set_stdout(false);
  EXPECT_EQ(code(req), grpc::StatusCode::INVALID_ARGUMENT);  // no stream at all
  req.set_stdout(true);
  req.set_container_id("no-such-container");
  EXPECT_EQ(code(req), grpc::StatusCode::NOT_FOUND);

  v1::PortForwardRequest pf;
  v1::PortForwardResponse pf_resp;
  EXPECT_EQ(Rt().PortForward(Ctx().get(), pf, &pf_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A token works once; an unknown one is 404 too.
  auto first = stream::RemoteCommand::Start(url2);
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_TRUE((*first)->Wait(Millis(30000)));
  stream::HttpReply refused;
  auto again = stream::SpdyConn::Dial(url2, {"v4.channel.k8s.io"}, &refused);
  EXPECT_FALSE(again);
  EXPECT_EQ(refused.status, 404) << refused.body;
  auto bogus = stream::SpdyConn::Dial(url2.substr(0, url2.rfind('/')) + "/AAAAAAAA",
                                      {"v4.channel.k8s.io"}, &refused);
  EXPECT_FALSE(bogus);
  EXPECT_EQ(refused.status, 404);

  // An exec on a container that stopped meanwhile is refused by the rpc.
  v1::StopContainerRequest stop;
  stop.set_container_id(p.ctr);
  v1::StopContainerResponse stop_resp;
  ASSERT_TRUE(Rt().StopContainer(Ctx().get(), stop, &stop_resp).ok());
  v1::ExecRequest late;
  late.set_container_id(p.ctr);
  late.add_cmd("true");
  late.set_stdout(true);
  v1::ExecResponse late_resp;
  EXPECT_FALSE(Rt().Exec(Ctx().get(), late, &late_resp).ok());
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, ExecOutputAndExitCodesOverEveryProtocol) {
  auto p = RunBusybox("st-exec", {"sleep", "3600"});
  ASSERT_FALSE(p.ctr.empty());
  const std::vector<std::string> fail = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  const std::vector<std::string> ok = {"sh", "-c", "echo fine"};
  struct Case {
    Transport transport;
    std::string protocol;
    bool v4_status;
  };
  for (const Case& c : std::vector<Case>{{Transport::kSpdy, "v4.channel.k8s.io", true},
                                         {Transport::kSpdy, "v3.channel.k8s.io", false},
                                         {Transport::kSpdy, "channel.k8s.io", false},
                                         {Transport::kWebSocket, "v5.channel.k8s.io", true},
                                         {Transport::kWebSocket, "v4.channel.k8s.io", true},
                                         {Transport::kWebSocket, "v4.base64.channel.k8s.io", true},
                                         {Transport::kWebSocket, "base64.channel.k8s.io", false}}) {
    SCOPED_TRACE(c.protocol + (c.transport == Transport::kSpdy ? " (SPDY)" : " (WebSocket)"));
    stream::RemoteCommandOptions o{.transport = c.transport, .protocols = {c.protocol}};
    auto bad = RunExec(p.ctr, fail, o);
    EXPECT_EQ(bad.stdout_data, "out\n");
    EXPECT_EQ(bad.stderr_data, "err\n");
    EXPECT_FALSE(bad.success);
    if (c.v4_status) {
      EXPECT_EQ(bad.exit_code, 3) << bad.error_data;
      EXPECT_EQ(bad.reason, "NonZeroExitCode") << bad.error_data;
    } else {
      EXPECT_NE(bad.error_data.find("exit code 3"), std::string::npos) << bad.error_data;
    }
    auto good = RunExec(p.ctr, ok, o);
    EXPECT_EQ(good.stdout_data, "fine\n");
    EXPECT_TRUE(good.success) << good.error_data;
    if (c.v4_status) {
      EXPECT_EQ(nlohmann::json::parse(good.error_data, nullptr, false),
                nlohmann::json::parse(R"({"metadata":{},"status":"Success"})"));
    } else {
      EXPECT_EQ(good.error_data, "");
    }
  }
  // A command that cannot start: InternalError in the status, the session still ends.
  auto missing = RunExec(p.ctr, {"/no/such/binary"});
  EXPECT_FALSE(missing.success);
  EXPECT_FALSE(missing.message.empty()) << missing.error_data;
  EXPECT_EQ(FifoDirs(p.ctr), 1u);  // only the container's own stdio
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, ExecStdinEofAndATerminalWithResize) {
  auto p = RunBusybox("st-tty", {"sleep", "3600"});
  ASSERT_FALSE(p.ctr.empty());
  {
    // No terminal: stdin EOF closes the process's stdin, so `cat` ends.
    auto url = ExecUrl(p.ctr, {"sh", "-c", "cat; echo eof"}, /*stdin=*/true);
    auto rc = stream::RemoteCommand::Start(url, {.stdin = true});
    ASSERT_TRUE(rc) << rc.error().ToString();
    ASSERT_TRUE((*rc)->WriteStdin("hello\n"));
    ASSERT_TRUE((*rc)->ReadStdoutUntil("hello\n"));
    std::string big(200 * 1024, 'x');  // more than a pipe holds
    ASSERT_TRUE((*rc)->WriteStdin(big));
    ASSERT_TRUE((*rc)->CloseStdin());
    auto out = (*rc)->Wait(Millis(30000));
    ASSERT_TRUE(out) << out.error().ToString();
    EXPECT_TRUE(out->success) << out->error_data;
    const std::string want = "hello\n" + big + "eof\n";
    EXPECT_EQ(out->stdout_data.size(), want.size());
    EXPECT_TRUE(out->stdout_data == want)
        << "head " << out->stdout_data.substr(0, 20) << " tail "
        << out->stdout_data.substr(out->stdout_data.size() -
                                   std::min<size_t>(20, out->stdout_data.size()));
  }
  for (Transport t : {Transport::kSpdy, Transport::kWebSocket}) {
    SCOPED_TRACE(t == Transport::kSpdy ? "SPDY" : "WebSocket");
    auto url = ExecUrl(p.ctr, {"sh"}, /*stdin=*/true, /*tty=*/true);
    auto rc = stream::RemoteCommand::Start(
        url, {.transport = t, .stdin = true, .stdout = true, .stderr = false, .tty = true});
    ASSERT_TRUE(rc) << rc.error().ToString();
    // A resize and the next command travel on different streams: the shell may run `stty`
    // before the resize lands (under kubectl too), so ask until it shows.
    auto size_becomes = [&](const std::string& size) {
      for (int i = 0; i < 40; ++i) {
        if (!(*rc)->WriteStdin("stty size\n")) return false;
        if ((*rc)->ReadStdoutUntil(size, Millis(500))) return true;
      }
      return false;
    };
    ASSERT_TRUE((*rc)->Resize(101, 37));
    ASSERT_TRUE((*rc)->WriteStdin("tty; echo T=$TERM\n"));
    auto seen = (*rc)->ReadStdoutUntil("T=xterm", Millis(20000));
    ASSERT_TRUE(seen) << seen.error().ToString();
    EXPECT_NE(seen->find("/dev/pts/"), std::string::npos) << *seen;
    EXPECT_TRUE(size_becomes("37 101"));
    ASSERT_TRUE((*rc)->Resize(80, 24));
    EXPECT_TRUE(size_becomes("24 80"));
    ASSERT_TRUE((*rc)->WriteStdin("exit 7\n"));
    auto out = (*rc)->Wait(Millis(30000));
    ASSERT_TRUE(out) << out.error().ToString();
    EXPECT_EQ(out->exit_code, 7) << out->error_data;
  }
  EXPECT_EQ(FifoDirs(p.ctr), 1u);
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, ExecProcessExitsWhileTheClientStillSends) {
  auto p = RunBusybox("st-early", {"sleep", "3600"});
  ASSERT_FALSE(p.ctr.empty());
  auto url = ExecUrl(p.ctr, {"sh", "-c", "read l; echo got $l; exit 4"}, /*stdin=*/true);
  auto rc = stream::RemoteCommand::Start(url, {.stdin = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  ASSERT_TRUE((*rc)->WriteStdin("one\n"));
  ASSERT_TRUE((*rc)->ReadStdoutUntil("got one"));
  // The process is gone: what the client sends now goes nowhere, and nothing breaks.
  for (int i = 0; i < 20; ++i) (void)(*rc)->WriteStdin(std::string(8192, 'y'));
  auto out = (*rc)->Wait(Millis(30000));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->exit_code, 4) << out->error_data;
  EXPECT_TRUE(Eventually([&] { return FifoDirs(p.ctr) == 1u; }, std::chrono::seconds(10)));
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, ClientThatVanishesLeavesNoProcessFifoOrFd) {
  auto p = RunBusybox("st-vanish", {"sleep", "3600"});
  ASSERT_FALSE(p.ctr.empty());
  // berthd's descriptors once a streaming exec has come and gone (its first one may open
  // things that stay, such as the streaming server's own state).
  RunExec(p.ctr, {"true"});
  const size_t fds = DirEntries(fmt::format("/proc/{}/fd", E().D().Pid())).size();
  for (bool tty : {false, true}) {
    SCOPED_TRACE(tty ? "tty" : "no tty");
    auto url = ExecUrl(p.ctr, {"sleep", tty ? "4242" : "4343"}, /*stdin=*/true, tty);
    auto rc = stream::RemoteCommand::Start(
        url, {.stdin = true, .stdout = true, .stderr = !tty, .tty = tty});
    ASSERT_TRUE(rc) << rc.error().ToString();
    const std::string marker = tty ? "sleep 4242" : "sleep 4343";
    ASSERT_TRUE(Eventually([&] { return Sh(p.ctr, "ps").find(marker) != std::string::npos; },
                           std::chrono::seconds(20)));
    (*rc)->Abort();
    EXPECT_TRUE(Eventually([&] { return Sh(p.ctr, "ps").find(marker) == std::string::npos; },
                           std::chrono::seconds(20)))
        << Sh(p.ctr, "ps");
    EXPECT_TRUE(Eventually([&] { return FifoDirs(p.ctr) == 1u; }, std::chrono::seconds(10)));
  }
  // A port-forward client gone mid-connection too.
  auto pf = stream::PortForwardSpdy::Dial(PortForwardUrl(p.id));
  ASSERT_TRUE(pf) << pf.error().ToString();
  auto s = (*pf)->Open(1);  // refused: only the session itself
  ASSERT_TRUE(s) << s.error().ToString();
  (*pf)->Conn().Abort();
  const std::string fd_dir = fmt::format("/proc/{}/fd", E().D().Pid());
  EXPECT_TRUE(
      Eventually([&] { return DirEntries(fd_dir).size() <= fds; }, std::chrono::seconds(10)))
      << DirEntries(fd_dir).size() << " descriptors, " << fds << " before";
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, AttachSeveralClientsThenDetach) {
  auto p =
      RunBusybox("st-attach", {"sh", "-c", "while read l; do echo got:$l; echo e:$l >&2; done"},
                 /*stdin=*/true, /*stdin_once=*/false);
  ASSERT_FALSE(p.ctr.empty());
  auto a = stream::RemoteCommand::Start(AttachUrl(p.ctr, true), {.stdin = true});
  ASSERT_TRUE(a) << a.error().ToString();
  auto b =
      stream::RemoteCommand::Start(AttachUrl(p.ctr, false), {.transport = Transport::kWebSocket});
  ASSERT_TRUE(b) << b.error().ToString();
  ASSERT_TRUE((*a)->WriteStdin("x\n"));
  EXPECT_TRUE((*a)->ReadStdoutUntil("got:x\n"));
  EXPECT_TRUE((*b)->ReadStdoutUntil("got:x\n"));
  // One client leaves; the container and the other client carry on.
  (*a)->Abort();
  auto c = stream::RemoteCommand::Start(AttachUrl(p.ctr, true), {.stdin = true});
  ASSERT_TRUE(c) << c.error().ToString();
  ASSERT_TRUE((*c)->WriteStdin("y\n"));
  EXPECT_TRUE((*c)->ReadStdoutUntil("got:y\n"));
  EXPECT_TRUE((*b)->ReadStdoutUntil("got:y\n"));
  // Without stdin_once, a client's stdin EOF does not close the container's stdin.
  ASSERT_TRUE((*c)->CloseStdin());
  (*c)->Abort();
  (*b)->Abort();
  EXPECT_EQ(ContainerStatus(p.ctr).state(), v1::CONTAINER_RUNNING);
  auto d = stream::RemoteCommand::Start(AttachUrl(p.ctr, true), {.stdin = true});
  ASSERT_TRUE(d) << d.error().ToString();
  ASSERT_TRUE((*d)->WriteStdin("z\n"));
  EXPECT_TRUE((*d)->ReadStdoutUntil("got:z\n"));
  (*d)->Abort();
  // The log has everything once, whoever was attached.
  const std::string log_path = LogPath(p.config, ContainerConfig("st-attach", "busybox", {}));
  for (const char* l : {"got:x", "got:y", "got:z", "e:x"}) {
    EXPECT_TRUE(Eventually(
        [&] {
          auto log = fs::ReadFile(log_path);
          return log && log->find(l) != std::string::npos;
        },
        std::chrono::seconds(10)))
        << l << " in " << log_path;
  }
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, AttachWithStdinOnceEndsWithTheContainer) {
  auto p = RunBusybox("st-once", {"sh", "-c", "while read l; do echo got:$l; done; echo bye"},
                      /*stdin=*/true, /*stdin_once=*/true);
  ASSERT_FALSE(p.ctr.empty());
  auto a = stream::RemoteCommand::Start(AttachUrl(p.ctr, true), {.stdin = true});
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE((*a)->WriteStdin("q\n"));
  ASSERT_TRUE((*a)->ReadStdoutUntil("got:q\n"));
  ASSERT_TRUE((*a)->CloseStdin());
  auto out = (*a)->Wait(Millis(30000));
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_TRUE(out->success) << out->error_data;
  EXPECT_EQ(out->stdout_data, "got:q\nbye\n");
  EXPECT_TRUE(WaitState(p.ctr, v1::CONTAINER_EXITED));
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, PortForwardManyConnectionsAndAClosedPort) {
  // busybox httpd serves the pod's /etc on 8080.
  auto p = RunBusybox("st-pf", {"httpd", "-f", "-p", "8080", "-h", "/etc"});
  ASSERT_FALSE(p.ctr.empty());
  ASSERT_TRUE(Eventually(
      [&] {
        return ExecSync(p.ctr, {"wget", "-q", "-O", "-", "http://127.0.0.1:8080/hostname"})
                   .exit_code() == 0;
      },
      std::chrono::seconds(20)));
  auto pf = stream::PortForwardSpdy::Dial(PortForwardUrl(p.id));
  ASSERT_TRUE(pf) << pf.error().ToString();
  constexpr int kConns = 8;
  std::vector<std::string> bodies(kConns), errors(kConns);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConns; ++i) {
    threads.emplace_back([&, i] {
      auto s = (*pf)->Open(8080);
      if (!s) {
        errors[i] = s.error().ToString();
        return;
      }
      if (auto w = s->Write("GET /hostname HTTP/1.0\r\n\r\n"); !w) {
        errors[i] = w.error().ToString();
        return;
      }
      auto body = s->ReadAll(Millis(30000));
      if (!body) {
        errors[i] = body.error().ToString();
        return;
      }
      bodies[i] = *body;
      auto err = s->ErrorText(Millis(30000));
      if (err && !err->empty()) errors[i] = *err;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kConns; ++i) {
    EXPECT_EQ(errors[i], "") << i;
    EXPECT_NE(bodies[i].find("200 OK"), std::string::npos) << bodies[i];
    EXPECT_NE(bodies[i].find("st-pf"), std::string::npos) << bodies[i];
  }
  // A bigger body, both ways: the pod's /etc/services-sized file is small; send a request with
  // a large header to push data in, and read a response out.
  {
    auto s = (*pf)->Open(8080);
    ASSERT_TRUE(s) << s.error().ToString();
    ASSERT_TRUE(s->Write("GET /passwd HTTP/1.0\r\nX-Pad: " + std::string(6000, 'p') + "\r\n\r\n"));
    auto body = s->ReadAll(Millis(30000));
    ASSERT_TRUE(body) << body.error().ToString();
    EXPECT_NE(body->find("root:x:0:0"), std::string::npos) << *body;
  }
  // Nothing listens on 8081: the error stream says so, the session stays usable.
  {
    auto s = (*pf)->Open(8081);
    ASSERT_TRUE(s) << s.error().ToString();
    auto err = s->ErrorText(Millis(30000));
    ASSERT_TRUE(err) << err.error().ToString();
    EXPECT_NE(err->find("8081"), std::string::npos) << *err;
    EXPECT_NE(err->find("onnection refused"), std::string::npos) << *err;
  }
  {
    auto s = (*pf)->Open(8080);
    ASSERT_TRUE(s) << s.error().ToString();
    ASSERT_TRUE(s->Write("GET /hostname HTTP/1.0\r\n\r\n"));
    auto body = s->ReadAll(Millis(30000));
    ASSERT_TRUE(body) << body.error().ToString();
    EXPECT_NE(body->find("st-pf"), std::string::npos);
  }
  // WebSocket port-forward: the ports come in the query.
  {
    auto ws = stream::PortForwardWs::Dial(PortForwardUrl(p.id) + "?port=8080&port=8081");
    ASSERT_TRUE(ws) << ws.error().ToString();
    ASSERT_TRUE((*ws)->Write(0, "GET /hostname HTTP/1.0\r\n\r\n"));
    auto err1 = (*ws)->ErrorText(1, Millis(30000));
    ASSERT_TRUE(err1) << err1.error().ToString();
    EXPECT_NE(err1->find("onnection refused"), std::string::npos) << *err1;
    auto body = (*ws)->ReadAll(0, Millis(30000));
    ASSERT_TRUE(body) << body.error().ToString();
    EXPECT_NE(body->find("st-pf"), std::string::npos) << *body;
  }
  RemovePod(p.id);
}

TEST_F(CriStreamingIT, HostileClientsAreDroppedAndOthersCarryOn) {
  auto p = RunBusybox("st-hostile", {"sh", "-c", "while read l; do echo got:$l; done"},
                      /*stdin=*/true);
  ASSERT_FALSE(p.ctr.empty());
  auto good = stream::RemoteCommand::Start(AttachUrl(p.ctr, true), {.stdin = true});
  ASSERT_TRUE(good) << good.error().ToString();

  // Garbage where a SPDY frame should be.
  {
    auto rc =
        stream::RemoteCommand::Start(ExecUrl(p.ctr, {"sleep", "5151"}, true), {.stdin = true});
    ASSERT_TRUE(rc) << rc.error().ToString();
    ASSERT_TRUE((*rc)->Spdy()->SendRaw(std::string("\x80\x07\x00\x63\x00\x00\x00\x04zzzz", 12)));
    EXPECT_TRUE((*rc)->Spdy()->WaitClosed(Millis(10000)));
    EXPECT_TRUE(Eventually([&] { return Sh(p.ctr, "ps").find("sleep 5151") == std::string::npos; },
                           std::chrono::seconds(20)));
  }
  // Thousands of streams on one connection.
  {
    auto conn = stream::SpdyConn::Dial(PortForwardUrl(p.id), {"portforward.k8s.io"});
    ASSERT_TRUE(conn) << conn.error().ToString();
    for (int i = 0; i < 1100 && !(*conn)->Closed(); ++i) {
      stream::spdy::HeaderBlock h{
          {"streamtype", "error"}, {"port", "80"}, {"requestid", std::to_string(i)}};
      if (!(*conn)->StartStream(h)) break;
    }
    EXPECT_TRUE((*conn)->WaitClosed(Millis(10000)));
  }
  // A non-upgrade request and a bad upgrade get HTTP errors.
  {
    std::string url = ExecUrl(p.ctr, {"true"});
    auto u = stream::ParseUrl(url);
    ASSERT_TRUE(u);
    auto r = stream::RawRequest(url, "POST " + u->target + " HTTP/1.1\r\nHost: " + u->HostPort() +
                                         "\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n");
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->status, 400) << r->body;
    auto junk = stream::RawRequest(url, "\x16\x03\x01 definitely not http\r\n\r\n");
    ASSERT_TRUE(junk) << junk.error().ToString();
    EXPECT_EQ(junk->status, 400);
  }
  // The well-behaved client never noticed.
  ASSERT_TRUE((*good)->WriteStdin("still\n"));
  EXPECT_TRUE((*good)->ReadStdoutUntil("got:still\n"));
  (*good)->Abort();
  v1::VersionRequest vr;
  v1::VersionResponse vresp;
  EXPECT_TRUE(Rt().Version(Ctx().get(), vr, &vresp).ok());
  EXPECT_TRUE(Eventually([&] { return FifoDirs(p.ctr) == 1u; }, std::chrono::seconds(10)));
  RemovePod(p.id);
}

}  // namespace
}  // namespace berth::testing
