// The public library's pieces that need no daemon: the stdio creators (a test plays the shim's
// side of the FIFOs) and the spec options.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "berth/client.h"
#include "common/fs.h"

namespace berth {
namespace {

std::string ReadAllFd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(CioTest, StreamsCopyBetweenFifosAndFds) {
  auto tmp = fs::TempDir::Create("berth-cio-");
  ASSERT_TRUE(tmp) << tmp.error().ToString();
  int in[2], out[2], err[2];
  ASSERT_EQ(::pipe(in), 0);
  ASSERT_EQ(::pipe(out), 0);
  ASSERT_EQ(::pipe(err), 0);
  {
    auto io = cio::WithStreams(in[0], out[1], err[1], {.fifo_dir = tmp->Path()})("p1");
    ASSERT_TRUE(io) << io.error().ToString();
    const cio::Config& cfg = (*io)->Config();
    EXPECT_FALSE(cfg.terminal);
    EXPECT_TRUE(cfg.stdin_path.ends_with("/p1-stdin")) << cfg.stdin_path;
    EXPECT_TRUE(cfg.stdout_path.ends_with("/p1-stdout")) << cfg.stdout_path;
    EXPECT_TRUE(cfg.stderr_path.ends_with("/p1-stderr")) << cfg.stderr_path;
    struct stat st {};
    ASSERT_EQ(::stat(cfg.stdout_path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    std::atomic<bool> closed{false};
    (*io)->SetStdinCloser([&] { closed = true; });

    // The shim's side: read stdin, write stdout and stderr.
    int sin = ::open(cfg.stdin_path.c_str(), O_RDONLY);
    ASSERT_GE(sin, 0);
    ASSERT_EQ(::write(in[1], "hello", 5), 5);
    ::close(in[1]);
    EXPECT_EQ(ReadAllFd(sin), "hello");  // EOF once our stdin ended
    ::close(sin);
    // The closer runs right after the copy closed the FIFO.
    for (int i = 0; i < 1000 && !closed; ++i) ::usleep(10000);
    EXPECT_TRUE(closed);
    int sout = ::open(cfg.stdout_path.c_str(), O_WRONLY);
    int serr = ::open(cfg.stderr_path.c_str(), O_WRONLY);
    ASSERT_GE(sout, 0);
    ASSERT_GE(serr, 0);
    ASSERT_EQ(::write(sout, "out", 3), 3);
    ASSERT_EQ(::write(serr, "err", 3), 3);
    ::close(sout);
    ::close(serr);
    (*io)->Wait();
    std::string dir = cfg.stdout_path.substr(0, cfg.stdout_path.rfind('/'));
    io->reset();  // the FIFO directory goes with the IO
    EXPECT_NE(::access(dir.c_str(), F_OK), 0) << dir;
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  EXPECT_EQ(ReadAllFd(out[0]), "out");
  EXPECT_EQ(ReadAllFd(err[0]), "err");
  ::close(out[0]);
  ::close(err[0]);
}

TEST(CioTest, TerminalHasOneOutputAndCancelEndsUnopenedStreams) {
  auto tmp = fs::TempDir::Create("berth-cio-");
  ASSERT_TRUE(tmp) << tmp.error().ToString();
  auto io = cio::WithStreams(-1, 1, 2, {.terminal = true, .fifo_dir = tmp->Path()})("t");
  ASSERT_TRUE(io) << io.error().ToString();
  EXPECT_TRUE((*io)->Config().terminal);
  EXPECT_EQ((*io)->Config().stdin_path, "");
  EXPECT_EQ((*io)->Config().stderr_path, "");
  EXPECT_FALSE((*io)->Config().stdout_path.empty());
  // Nobody ever opens the FIFO: Cancel + Wait must still return.
  (*io)->Cancel();
  (*io)->Wait();
}

TEST(CioTest, NullLogAndBadInput) {
  auto null = cio::NullIO()("x");
  ASSERT_TRUE(null);
  EXPECT_EQ((*null)->Config().stdout_path, "");
  auto log = cio::LogFile("/var/log/x.log")("x");
  ASSERT_TRUE(log);
  EXPECT_EQ((*log)->Config().stdout_path, "file:///var/log/x.log");
  EXPECT_EQ((*log)->Config().stderr_path, "file:///var/log/x.log");
  EXPECT_EQ((*log)->Config().stdin_path, "");
  EXPECT_TRUE(IsError(cio::LogFile("x.log")("x"), Errc::kInvalidArgument));
  EXPECT_TRUE(IsError(cio::LogUri("no-scheme")("x"), Errc::kInvalidArgument));
  EXPECT_TRUE(IsError(cio::WithStreams(0, 1, 2)(""), Errc::kInvalidArgument));
}

TEST(SpecOptsTest, OptionsEditTheSpec) {
  Spec s = {{"process", {{"args", {"sh"}}, {"env", {"PATH=/bin"}}, {"cwd", "/"}}},
            {"linux", Spec::object()}};
  SpecContext ctx;
  ASSERT_TRUE(WithProcessArgs({"echo", "hi"})(ctx, s));
  ASSERT_TRUE(WithEnv({"A=1", "PATH=/usr/bin"})(ctx, s));
  ASSERT_TRUE(WithProcessCwd("/work")(ctx, s));
  ASSERT_TRUE(WithHostname("box")(ctx, s));
  ASSERT_TRUE(WithTTY()(ctx, s));
  ASSERT_TRUE(WithAnnotations({{"k", "v"}})(ctx, s));
  EXPECT_EQ(s["process"]["args"], Spec({"echo", "hi"}));
  EXPECT_EQ(s["process"]["env"], Spec({"PATH=/usr/bin", "A=1", "TERM=xterm"}));
  EXPECT_EQ(s["process"]["cwd"], "/work");
  EXPECT_EQ(s["process"]["terminal"], true);
  EXPECT_EQ(s["hostname"], "box");
  EXPECT_EQ(s["annotations"]["k"], "v");
  // A user name needs the image's /etc/passwd: without a snapshot it cannot resolve.
  EXPECT_FALSE(WithUser("nobody")(ctx, s));
  ASSERT_TRUE(WithUser("1000:1000")(ctx, s));
  EXPECT_EQ(s["process"]["user"]["uid"], 1000);
}

}  // namespace
}  // namespace berth
