#include "server/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "server/builtins.h"

namespace berth::server {
namespace {

fs::UniqueFd BindSocket(const std::string& path, bool listen_on_it) {
  fs::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  EXPECT_EQ(::bind(fd.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (listen_on_it) {
    EXPECT_EQ(::listen(fd.Get(), 1), 0);
  }
  return fd;
}

TEST(PrepareSocketTest, RemovesStaleSocketAndCreatesParents) {
  auto dir = fs::TempDir::Create("sock-test-");
  ASSERT_TRUE(dir);
  std::string path = dir->Path() + "/a/b/berth.sock";
  ASSERT_TRUE(PrepareSocket(path));
  struct stat st {};
  ASSERT_EQ(::stat((dir->Path() + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  { auto fd = BindSocket(path, false); }  // closed without unlink: stale
  ASSERT_TRUE(PrepareSocket(path));
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "stale socket removed";
}

TEST(PrepareSocketTest, RefusesLiveSocketAndNonSockets) {
  auto dir = fs::TempDir::Create("sock-test-");
  ASSERT_TRUE(dir);
  std::string path = dir->Path() + "/live.sock";
  auto fd = BindSocket(path, true);
  auto s = PrepareSocket(path);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kFailedPrecondition));
  ASSERT_TRUE(fs::WriteFileAtomic(dir->Path() + "/file", "x"));
  EXPECT_FALSE(PrepareSocket(dir->Path() + "/file"));
}

TEST(ServerTest, SecondServerOnSameRootIsRefused) {
  auto dir = fs::TempDir::Create("server-test-");
  ASSERT_TRUE(dir);
  Config c;
  c.root = dir->Path() + "/root";
  c.state = dir->Path() + "/state";
  c.grpc.address = dir->Path() + "/state/berth.sock";
  plugin::Registry registry;
  RegisterBuiltins(registry);
  auto first = Server::Start(c, registry);
  ASSERT_TRUE(first) << first.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(c.grpc.address.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  Config c2 = c;
  c2.grpc.address = dir->Path() + "/other.sock";
  auto second = Server::Start(c2, registry);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().ToString().find("in use by another berthd"), std::string::npos);
  (*first)->Shutdown();
  EXPECT_NE(::stat(c.grpc.address.c_str(), &st), 0) << "socket removed on shutdown";
}

}  // namespace
}  // namespace berth::server

namespace berth::server {
namespace {

TEST(DebugStateTest, AgesReadLikeGoDurations) {
  using namespace std::chrono;
  EXPECT_EQ(FormatAge(milliseconds(0)), "0s");
  EXPECT_EQ(FormatAge(milliseconds(190)), "0.19s");
  EXPECT_EQ(FormatAge(milliseconds(61'500)), "1m1.5s");
  EXPECT_EQ(FormatAge(hours(2) + seconds(3)), "2h0m3s");
  EXPECT_EQ(FormatAge(-seconds(1)), "0s");
}

TEST(DebugStateTest, TrackerListsCallsOldestFirstUntilTheyEnd) {
  CallTracker t;
  uint64_t a = t.Begin("/a");
  uint64_t b = t.Begin("/b");
  t.SetNamespace(b, "ns");
  auto calls = t.InFlight();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "/a");
  EXPECT_EQ(calls[1].ns, "ns");
  t.End(a);
  t.End(a);  // twice: harmless
  calls = t.InFlight();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].method, "/b");
  t.End(b);
  EXPECT_TRUE(t.InFlight().empty());
}

TEST(DebugStateTest, ThreadLinesNameThisProcesssThreads) {
  auto lines = ThreadLines();
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines[0].starts_with(std::to_string(::getpid()) + " ")) << lines[0];
}

}  // namespace
}  // namespace berth::server
