#include "cli/cio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <thread>

#include <gtest/gtest.h>

#include "cli/run.h"
#include "client/process_io.h"
#include "common/fs.h"

namespace berth::cli {
namespace {

using client::NewFifoSet;
using client::ProcessIo;

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

bool IsFifo(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

class CioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::TempDir::Create("cio-test-");
    ASSERT_TRUE(d);
    dir_ = std::make_unique<fs::TempDir>(std::move(*d));
  }
  std::unique_ptr<fs::TempDir> dir_;
};

TEST_F(CioTest, FifoSetLayout) {
  auto set = NewFifoSet(dir_->Path() + "/fifo", "web", true, false);
  ASSERT_TRUE(set) << set.error().ToString();
  EXPECT_EQ(set->dir.rfind(dir_->Path() + "/fifo/", 0), 0U);
  EXPECT_EQ(set->dir.size(), dir_->Path().size() + 6 + 32);
  EXPECT_EQ(set->in, set->dir + "/web-stdin");
  EXPECT_EQ(set->out, set->dir + "/web-stdout");
  EXPECT_EQ(set->err, set->dir + "/web-stderr");
  EXPECT_TRUE(IsFifo(set->in) && IsFifo(set->out) && IsFifo(set->err));
  auto tty = NewFifoSet(dir_->Path() + "/fifo", "web", false, true);
  ASSERT_TRUE(tty);
  EXPECT_EQ(tty->in, "");
  EXPECT_EQ(tty->err, "");
  EXPECT_TRUE(tty->terminal);
  EXPECT_NE(tty->dir, set->dir);
}

// The shim's side: it writes and closes; everything arrives before Wait returns, and the
// directory goes with the ProcessIo.
TEST_F(CioTest, OutputIsCopiedUntilTheWriterCloses) {
  auto set = NewFifoSet(dir_->Path(), "c", false, false);
  ASSERT_TRUE(set);
  int out[2];
  int err[2];
  ASSERT_EQ(::pipe(out), 0);
  ASSERT_EQ(::pipe(err), 0);
  auto io = ProcessIo::Start(*set, {.in = -1, .out = out[1], .err = err[1]});
  ASSERT_TRUE(io);
  std::thread shim([&] {
    int o = ::open(set->out.c_str(), O_WRONLY);
    int e = ::open(set->err.c_str(), O_WRONLY);
    std::string big(200000, 'x');  // more than a pipe buffer
    EXPECT_EQ(::write(o, big.data(), big.size()), static_cast<ssize_t>(big.size()));
    EXPECT_EQ(::write(e, "err\n", 4), 4);
    ::close(o);
    ::close(e);
  });
  std::string got;
  std::thread reader([&] { got = ReadAll(out[0]); });
  shim.join();
  (*io)->Cancel();  // the streams were opened: Cancel must not cut them short
  (*io)->Wait();
  ::close(out[1]);
  reader.join();
  ::close(err[1]);
  EXPECT_EQ(got.size(), 200000U);
  EXPECT_EQ(ReadAll(err[0]), "err\n");
  ::close(out[0]);
  ::close(err[0]);
  io->reset();
  EXPECT_FALSE(std::filesystem::exists(set->dir));
}

// A shim that never opened the FIFOs (the task failed to start): Cancel ends the copies.
TEST_F(CioTest, CancelEndsStreamsNobodyOpened) {
  auto set = NewFifoSet(dir_->Path(), "c", true, false);
  ASSERT_TRUE(set);
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  auto io = ProcessIo::Start(*set, {.in = in[0], .out = 1, .err = 2});
  ASSERT_TRUE(io);
  (*io)->Cancel();
  (*io)->Wait();
  io->reset();
  ::close(in[0]);
  ::close(in[1]);
}

TEST_F(CioTest, StdinIsCopiedAndEofRunsTheCloser) {
  auto set = NewFifoSet(dir_->Path(), "c", true, false);
  ASSERT_TRUE(set);
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  auto io = ProcessIo::Start(*set, {.in = in[0], .out = -1, .err = -1});
  ASSERT_TRUE(io);
  std::atomic<int> closed{0};
  (*io)->SetStdinCloser([&] { ++closed; });
  ASSERT_EQ(::write(in[1], "hello\n", 6), 6);
  ::close(in[1]);
  int shim = ::open(set->in.c_str(), O_RDONLY);
  ASSERT_GE(shim, 0);
  EXPECT_EQ(ReadAll(shim), "hello\n");  // EOF: the client closed its side
  ::close(shim);
  // The closer runs right after the FIFO is closed, on the copy's thread.
  for (int i = 0; i < 2000 && closed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  io->reset();
  EXPECT_EQ(closed, 1);
  ::close(in[0]);
}

TEST_F(CioTest, DetachKeepsTheFifos) {
  auto set = NewFifoSet(dir_->Path(), "c", false, false);
  ASSERT_TRUE(set);
  auto io = ProcessIo::Start(*set, {.in = -1, .out = -1, .err = -1});
  ASSERT_TRUE(io);
  (*io)->Detach();
  io->reset();
  EXPECT_TRUE(IsFifo(set->out));
}

TEST(Signals, ParseSignal) {
  EXPECT_EQ(*ParseSignal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*ParseSignal("kill"), SIGKILL);
  EXPECT_EQ(*ParseSignal("TERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("9"), 9);
  EXPECT_EQ(*ParseSignal("SIGWINCH"), SIGWINCH);
  auto bad = ParseSignal("SIGNOPE");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().ToString(), "invalid signal: SIGNOPE");
  EXPECT_FALSE(ParseSignal("0"));
}

TEST(Signals, LoopDeliversBlockedSignals) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<int> got{0};
  {
    auto loop = SignalLoop::Start(set, [&](int sig) { got = sig; });
    ASSERT_TRUE(loop);
    ::kill(::getpid(), SIGUSR2);
    for (int i = 0; i < 2000 && got == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  EXPECT_EQ(got, SIGUSR2);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace
}  // namespace berth::cli
