// berthd lifecycle against the real ctr: version, plugins, restart, crash, lock, signals.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "harness.h"

namespace berth::testing {
namespace {

#define ASSERT_STARTED(d) ASSERT_TRUE((d)->Start()) << "berthd did not start:\n" << (d)->Log()

// True once our child `pid` has exited (within `timeout`). It is not reaped (WNOWAIT), so the
// caller's Daemon still collects its exit status; a signal sent to it after this is a no-op.
bool ExitsWithin(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
    if (info.si_pid == pid) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Uuid(const RunResult& r) {
  std::smatch m;
  static const std::regex kUuid("UUID: ([0-9a-f-]{36})");
  return std::regex_search(r.out, m, kUuid) ? m[1].str() : "";
}

TEST(DaemonTest, CtrVersionShowsServer) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  auto r = d->Ctr({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Server:\n  Version:  v0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  Revision: "), std::string::npos) << r.out;
  EXPECT_FALSE(Uuid(r).empty()) << r.out;
  auto b = d->Berth({"version"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Uuid(b), Uuid(r));
}

TEST(DaemonTest, PluginsAreOk) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  auto r = d->Ctr({"plugins", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("TYPE"), std::string::npos);
  for (const char* id : {"bolt", "namespaces", "introspection", "version", "healthcheck"}) {
    std::regex line(std::string("\\n\\S+\\s+") + id + "\\s+-\\s+ok\\s*\\n");
    EXPECT_TRUE(std::regex_search(r.out, line)) << id << " not ok in:\n" << r.out;
  }
  EXPECT_EQ(r.out.find("error"), std::string::npos) << r.out;
  // Our CLI prints the same table.
  auto b = d->Berth({"plugins", "ls"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.out, r.out);
  // Filters.
  auto f = d->Ctr({"plugins", "ls", "type==io.containerd.metadata.v1"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.out.find("bolt"), std::string::npos);
  EXPECT_EQ(f.out.find("version"), std::string::npos) << f.out;
  auto bad = d->Ctr({"plugins", "ls", "type==/x"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("invalid argument"), std::string::npos) << bad.err;
  auto detailed = d->Ctr({"plugins", "ls", "-d", "id==bolt"});
  ASSERT_EQ(detailed.exit_code, 0) << detailed.err;
  EXPECT_NE(detailed.out.find("meta.lmdb"), std::string::npos) << detailed.out;
  // ctr prints exports in Go's random map order: compare the lines as sets.
  auto lines = [](const std::string& text) {
    std::multiset<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.insert(text.substr(start, nl - start));
    }
    return out;
  };
  EXPECT_EQ(lines(d->Berth({"plugins", "ls", "-d", "id==bolt"}).out), lines(detailed.out));
}

TEST(DaemonTest, UuidAndNamespacesSurviveRestart) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  std::string uuid = Uuid(d->Ctr({"version"}));
  ASSERT_EQ(d->Ctr({"namespaces", "create", "keep", "k=v"}).exit_code, 0);
  EXPECT_EQ(d->Stop(), 0) << d->Log();
  struct stat st {};
  EXPECT_NE(::stat(d->Socket().c_str(), &st), 0) << "socket removed on clean shutdown";
  ASSERT_STARTED(d);
  EXPECT_EQ(Uuid(d->Ctr({"version"})), uuid);
  auto ls = d->Ctr({"ns", "ls"});
  EXPECT_NE(ls.out.find("keep k=v"), std::string::npos) << ls.out;
}

TEST(DaemonTest, Kill9ThenRestart) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  ASSERT_EQ(d->Ctr({"namespaces", "create", "crashy"}).exit_code, 0);
  d->Kill9();
  struct stat st {};
  ASSERT_EQ(::stat(d->Socket().c_str(), &st), 0) << "a crash leaves the socket behind";
  ASSERT_STARTED(d);
  auto ls = d->Ctr({"ns", "ls", "-q"});
  EXPECT_NE(ls.out.find("crashy"), std::string::npos) << ls.out;
  EXPECT_NE(d->Log().find("removing stale socket"), std::string::npos);
}

TEST(DaemonTest, SecondDaemonOnSameRootIsRefused) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  // Same root, another socket.
  auto r =
      Exec({BinPath("berthd"), "--config", d->ConfigPath(), "--address", d->Dir() + "/other.sock"},
           "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("in use by another berthd"), std::string::npos) << r.err;
  // Same socket, another root: the live socket is not stolen.
  auto r2 = Exec({BinPath("berthd"), "--config", d->ConfigPath(), "--root", d->Dir() + "/root2",
                  "--state", d->Dir() + "/state2"},
                 "", std::chrono::seconds(30));
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("in use by another running server"), std::string::npos) << r2.err;
  EXPECT_EQ(d->Ctr({"version"}).exit_code, 0) << "the first daemon keeps serving";
}

TEST(DaemonTest, SocketAndDirectoryModes) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  struct stat st {};
  ASSERT_EQ(::stat(d->Socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(::stat(d->State().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  ASSERT_EQ(::stat(d->Root().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
}

TEST(DaemonTest, HealthServing) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  auto channel = grpc::CreateChannel("unix:" + d->Socket(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty_slice("", 0);  // HealthCheckRequest{service: ""} is the empty message
  grpc::ByteBuffer req(&empty_slice, 1);
  grpc::ByteBuffer resp;
  grpc::Status st;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", {}, &req, &resp, [&](grpc::Status s) {
    std::lock_guard lock(mu);
    st = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2)) << "status: SERVING";
}

TEST(DaemonTest, ConfigDefaultAndBadConfig) {
  auto r = Exec({BinPath("berthd"), "config", "default"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("root = '/var/lib/berth'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[grpc]"), std::string::npos);
  auto d = Daemon::Create({.extra_config = "[debug]\n  level = \"shouty\"\n"});
  auto bad_level = Exec({BinPath("berthd"), "--config", d->ConfigPath()});
  EXPECT_EQ(bad_level.exit_code, 1);
  EXPECT_NE(bad_level.err.find("not a valid log level: \"shouty\""), std::string::npos)
      << bad_level.err;
  auto missing = Exec({BinPath("berthd"), "--config", "/nonexistent/berth.toml"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/berth.toml"), std::string::npos) << missing.err;
}

TEST(DaemonTest, SigintShutsDownCleanly) {
  auto d = Daemon::Create();
  ASSERT_STARTED(d);
  ASSERT_EQ(::kill(d->Pid(), SIGINT), 0);
  // SIGINT alone must stop it: no other signal is sent until it has exited.
  ASSERT_TRUE(ExitsWithin(d->Pid(), std::chrono::seconds(20)))
      << "berthd still running 20 s after SIGINT:\n"
      << d->Log();
  // Already exited (not yet reaped): Stop()'s SIGTERM cannot reach it, it only collects the status.
  EXPECT_EQ(d->Stop(), 0);
  EXPECT_NE(d->Log().find("signal=interrupt"), std::string::npos) << d->Log();
  EXPECT_NE(d->Log().find("berthd stopped"), std::string::npos) << d->Log();
}

// SIGUSR1 dumps the state to the log and to a file in the state dir, and berthd goes on
// serving; SIGHUP is ignored. (Either signal used to kill berthd and leave its socket.)
TEST(DaemonTest, Sigusr1DumpsStateAndSighupIsIgnored) {
  Daemon::Options o;
  o.extra_config =
      "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.example\".auth]\n"
      "password = \"hunter2\"\n";
  auto d = Daemon::Create(o);
  ASSERT_STARTED(d);
  ASSERT_EQ(d->Ctr({"leases", "create", "--id", "held-lease"}, "dumpns").exit_code, 0);
  auto events = Watch::Start({"ctr", "-a", d->Socket(), "-n", "dumpns", "events"});

  ASSERT_EQ(::kill(d->Pid(), SIGHUP), 0);
  // The subscription is in flight once ctr has connected: dump until the dump shows it.
  std::string dump;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (dump.find("Events/Subscribe  namespace=dumpns") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(::kill(d->Pid(), SIGUSR1), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d->State(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with("berthd.") && name.ends_with(".state.log")) {
        dump = ReadText(e.path().string());
      }
    }
  }
  ASSERT_NE(dump.find("Events/Subscribe  namespace=dumpns"), std::string::npos) << dump << "\n"
                                                                                << d->Log();
  EXPECT_TRUE(dump.starts_with("=== BEGIN berthd state dump ===\n")) << dump;
  EXPECT_TRUE(dump.ends_with("=== END berthd state dump ===\n")) << dump;
  EXPECT_NE(dump.find(", log level debug\n"), std::string::npos) << "as --log-level set it\n"
                                                                 << dump;
  EXPECT_NE(dump.find("\nthreads ("), std::string::npos) << dump;
  EXPECT_NE(dump.find(" h2-guard S "), std::string::npos) << "the h2 guard's thread\n" << dump;
  EXPECT_NE(dump.find("\ntasks (0)"), std::string::npos) << dump;
  EXPECT_NE(dump.find("  dumpns/held-lease created "), std::string::npos) << dump;
  EXPECT_NE(dump.find("address = '" + d->Socket() + "'"), std::string::npos) << dump;
  EXPECT_NE(dump.find("password = '<redacted>'"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("hunter2"), std::string::npos) << "a secret reached the dump";
  const std::string log = d->Log();
  EXPECT_NE(log.find("received SIGHUP: ignored"), std::string::npos) << log;
  EXPECT_NE(log.find("msg=\"state dump written\""), std::string::npos) << log;
  EXPECT_NE(log.find("=== BEGIN berthd state dump ==="), std::string::npos) << log;
  EXPECT_EQ(log.find("hunter2"), std::string::npos) << "a secret reached the log";

  // Still serving, and a SIGTERM still stops it.
  EXPECT_EQ(d->Ctr({"version"}).exit_code, 0);
  EXPECT_EQ(d->Stop(), 0);
}

}  // namespace
}  // namespace berth::testing
