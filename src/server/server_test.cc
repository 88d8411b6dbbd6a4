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
