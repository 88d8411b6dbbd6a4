// Namespaces through the real ctr and through berth, as against containerd.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "harness.h"

namespace berth::testing {
namespace {

class NamespacesIT : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = Daemon::Create();
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }
  std::unique_ptr<Daemon> d_;
};

TEST_F(NamespacesIT, CreateListLabelRemove) {
  auto c = d_->Ctr({"namespaces", "create", "ns1", "a=b"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto ls = d_->Ctr({"ns", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "NAME LABELS \nns1  a=b    \n");
  ASSERT_EQ(d_->Ctr({"ns", "label", "ns1", "a=c"}).exit_code, 0);
  EXPECT_EQ(d_->Ctr({"ns", "ls"}).out, "NAME LABELS \nns1  a=c    \n");
  ASSERT_EQ(d_->Ctr({"ns", "label", "ns1", "a="}).exit_code, 0);
  EXPECT_EQ(d_->Ctr({"ns", "ls"}).out, "NAME LABELS \nns1         \n");
  auto rm = d_->Ctr({"ns", "rm", "ns1"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, "ns1\n");
  EXPECT_EQ(d_->Ctr({"ns", "ls", "-q"}).out, "");
}

TEST_F(NamespacesIT, DuplicateCreateFails) {
  ASSERT_EQ(d_->Ctr({"ns", "create", "dup"}).exit_code, 0);
  auto again = d_->Ctr({"ns", "create", "dup"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("namespace \"dup\": already exists"), std::string::npos) << again.err;
}

TEST_F(NamespacesIT, InvalidNameIsInvalidArgumentWithRule) {
  auto r = d_->Ctr({"ns", "create", "Bad_-name"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("invalid argument"), std::string::npos) << r.err;
  auto b = d_->Berth({"ns", "create", "Bad_-name"});
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.err.find("invalid argument"), std::string::npos) << b.err;
}

TEST_F(NamespacesIT, NamespaceHeaderIsValidatedOnEveryCall) {
  auto r = d_->Ctr({"ns", "ls"}, "bad/ns");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("namespace validation"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid argument"), std::string::npos) << r.err;
  auto p = d_->Ctr({"plugins", "ls"}, "-bad");
  EXPECT_EQ(p.exit_code, 1) << p.out;
}

TEST_F(NamespacesIT, RemoveUnknownIsQuietLikeCtr) {
  // ctr prints the name and succeeds when the namespace does not exist.
  auto r = d_->Ctr({"ns", "rm", "ghost"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto b = d_->Berth({"ns", "rm", "ghost"});
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.out, r.out);
}

TEST_F(NamespacesIT, BerthCliMatchesCtr) {
  ASSERT_EQ(d_->Berth({"namespaces", "create", "alpha", "x=1", "y=2"}).exit_code, 0);
  ASSERT_EQ(d_->Berth({"ns", "c", "beta"}).exit_code, 0);
  ASSERT_EQ(d_->Berth({"ns", "label", "beta", "z=3"}).exit_code, 0);
  auto ctr = d_->Ctr({"ns", "ls"});
  auto berth = d_->Berth({"ns", "ls"});
  ASSERT_EQ(berth.exit_code, 0) << berth.err;
  EXPECT_EQ(berth.out, ctr.out);
  EXPECT_EQ(ctr.out, "NAME  LABELS  \nalpha x=1,y=2 \nbeta  z=3     \n");
  EXPECT_EQ(d_->Berth({"ns", "ls", "-q"}).out, "alpha\nbeta\n");
  // An empty value removes the label; a second create of a name fails as ctr's does.
  ASSERT_EQ(d_->Berth({"ns", "label", "alpha", "x="}).exit_code, 0);
  EXPECT_EQ(d_->Berth({"ns", "ls"}).out, d_->Ctr({"ns", "ls"}).out);
  EXPECT_NE(d_->Ctr({"ns", "ls"}).out.find("alpha y=2 "), std::string::npos);
  auto dup = d_->Berth({"ns", "create", "beta"});
  auto ctr_dup = d_->Ctr({"ns", "create", "beta"});
  EXPECT_EQ(dup.exit_code, 1);
  ASSERT_TRUE(ctr_dup.err.starts_with("ctr: ")) << ctr_dup.err;
  EXPECT_EQ(dup.err, "berth: " + ctr_dup.err.substr(5));
  auto rm = d_->Berth({"ns", "rm", "alpha", "beta"});
  EXPECT_EQ(rm.out, "alpha\nbeta\n");
}

TEST_F(NamespacesIT, BerthHonoursEnvironment) {
  setenv("CONTAINERD_ADDRESS", d_->Socket().c_str(), 1);
  auto r = Exec({BinPath("berth"), "ns", "create", "fromenv"});
  unsetenv("CONTAINERD_ADDRESS");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(d_->Ctr({"ns", "ls", "-q"}).out.find("fromenv"), std::string::npos);
}

// A missing, stale or forbidden socket fails at once with its cause: the default 10 s connect
// timeout is not waited out ("deadline exceeded" would say it was). Only something that accepts
// connections but does not answer waits, for --connect-timeout.
TEST_F(NamespacesIT, ConnectionErrorsNameTheirCause) {
  const std::string dir = d_->Dir();
  auto berth = [](const std::string& sock) {
    return Exec({BinPath("berth"), "-a", sock, "ns", "ls"});
  };
  auto unix_socket = [](const std::string& path, bool listen) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << path;
    if (listen) {
      EXPECT_EQ(::listen(fd, 8), 0);
    }
    return fd;
  };
  constexpr auto npos = std::string::npos;

  auto missing = berth(dir + "/nope.sock");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("berth: failed to dial \"" + dir + "/nope.sock\""), npos)
      << missing.err;
  EXPECT_NE(missing.err.find("connect: no such file or directory"), npos) << missing.err;
  EXPECT_NE(missing.err.find("start berthd"), npos) << missing.err;
  EXPECT_EQ(missing.err.find("deadline exceeded"), npos) << missing.err;

  ::close(unix_socket(dir + "/stale.sock", false));  // a socket file nothing listens on
  auto stale = berth(dir + "/stale.sock");
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_NE(stale.err.find("connect: connection refused"), npos) << stale.err;
  EXPECT_NE(stale.err.find("stale socket"), npos) << stale.err;

  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/plain", "not a socket"));
  auto plain = berth(dir + "/plain");
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.err.find("not a socket"), npos) << plain.err;

  // The daemon's own socket, as a user who may not use it.
  auto forbidden = Exec({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         BinPath("berth"), "-a", d_->Socket(), "ns", "ls"});
  EXPECT_EQ(forbidden.exit_code, 1) << forbidden.err;
  EXPECT_NE(forbidden.err.find("connect: permission denied"), npos) << forbidden.err;
  EXPECT_NE(forbidden.err.find("run this as root"), npos) << forbidden.err;

  int silent = unix_socket(dir + "/silent.sock", true);  // accepts (backlog), never answers
  auto hung =
      Exec({BinPath("berth"), "-a", dir + "/silent.sock", "--connect-timeout", "1s", "ns", "ls"});
  ::close(silent);
  EXPECT_EQ(hung.exit_code, 1);
  EXPECT_NE(hung.err.find("context deadline exceeded"), npos) << hung.err;
  EXPECT_NE(hung.err.find("does not answer"), npos) << hung.err;
}

// Usage errors: "berth: <message>", exit 1, and an unknown flag is named wherever it is (a
// command whose flags end at its first argument took it for the image). Bare command groups
// print their command list, as ctr's do.
TEST_F(NamespacesIT, UsageErrorsNameTheFlag) {
  auto berth = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinPath("berth"), "-a", d_->Socket()});
    return Exec(args);
  };
  auto run = berth({"run", "-x", "busybox", "c1", "sh"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.err, "berth: flag provided but not defined: -x\n");
  auto create = berth({"containers", "create", "--bogus", "busybox", "c1"});
  EXPECT_EQ(create.exit_code, 1);
  EXPECT_EQ(create.err, "berth: flag provided but not defined: --bogus\n");
  auto exec = berth({"tasks", "exec", "--exec-id", "e", "-z", "c1", "sh"});
  EXPECT_EQ(exec.exit_code, 1);
  EXPECT_EQ(exec.err, "berth: flag provided but not defined: -z\n");
  auto ls = berth({"images", "ls", "--nope"});
  EXPECT_EQ(ls.exit_code, 1);
  EXPECT_EQ(ls.err, "berth: flag provided but not defined: --nope\n");
  auto typo = berth({"images", "lss"});
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_EQ(typo.err,
            "berth: unknown command \"lss\" for \"berth images\"; did you mean \"list\"?\n");

  // A duration without a unit is refused by name, for both timeouts (--timeout was ignored).
  for (const char* flag : {"--timeout", "--connect-timeout"}) {
    auto r = berth({flag, "10", "ns", "ls"});
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_EQ(r.err, std::string("berth: ") + flag +
                         ": invalid duration \"10\" (use e.g. 10s, 1m30s, 500ms)\n");
  }

  // docker's -it: -i is a flag (stdin is attached anyway), so the image is the image.
  for (const char* flags : {"-i", "-it"}) {
    auto r = berth({"run", flags, "--rm", "no-such-image", "c1", "true"});
    EXPECT_EQ(r.exit_code, 1) << flags;
    EXPECT_NE(r.err.find("no-such-image"), std::string::npos) << flags << ": " << r.err;
    EXPECT_EQ(r.err.find("flag provided"), std::string::npos) << flags << ": " << r.err;
  }

  auto bare = Exec({BinPath("berth")});
  EXPECT_EQ(bare.exit_code, 0) << bare.err;
  EXPECT_NE(bare.out.find("Subcommands:"), std::string::npos) << bare.out;
  EXPECT_NE(bare.out.find("  images, image, i "), std::string::npos) << bare.out;
  auto group = berth({"images"});
  EXPECT_EQ(group.exit_code, 0) << group.err;
  EXPECT_NE(group.out.find("  list, ls "), std::string::npos) << group.out;
}

TEST_F(NamespacesIT, UnreachableDaemonIsAClearError) {
  auto r = Exec(
      {BinPath("berth"), "-a", d_->Dir() + "/nope.sock", "--connect-timeout", "1s", "ns", "ls"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.sock"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace berth::testing
