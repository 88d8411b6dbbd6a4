#include "cri/io/exec_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>

#include "cri/io/test_util.h"

namespace berth::cri::io {
namespace {

using testing::Child;
using testing::IoThread;
using testing::WaitFor;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// The shim's end of an output FIFO, blocking, for a child to write to as its stdout/stderr.
fs::UniqueFd OpenWriter(const std::string& path) {
  return fs::UniqueFd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
}

class ExecIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = fs::TempDir::Create("cri-exec-");
    ASSERT_TRUE(t);
    tmp_.emplace(std::move(*t));
    root_ = tmp_->Path() + "/containers/c1";
  }

  // OnDone as a future.
  static std::future<Status> Done(ExecIo& e) {
    auto p = std::make_shared<std::promise<Status>>();
    e.OnDone([p](Status st) { p->set_value(std::move(st)); });
    return p->get_future();
  }

  IoThread io_;  // first: destroyed last
  std::optional<fs::TempDir> tmp_;
  std::string root_;
};

TEST_F(ExecIoTest, CapturesBothOutputsUntilEof) {
  EXPECT_EQ(kDefaultExecOutputLimit, 16u * 1024 * 1024);
  auto e = ExecIo::Create(io_.Io(), root_, "exec1");
  ASSERT_TRUE(e) << e.error().ToString();
  const FifoSet& f = e->Fifos();
  EXPECT_EQ(f.dir.substr(0, root_.size() + 1), root_ + "/");
  EXPECT_EQ(f.stdout_path, f.dir + "/exec1-stdout");
  EXPECT_EQ(f.stderr_path, f.dir + "/exec1-stderr");
  EXPECT_EQ(f.stdin_path, "");
  auto done = Done(*e);
  {
    // "Exec Start": the shim opens its ends and runs the process, then we are told.
    fs::UniqueFd out = OpenWriter(f.stdout_path);
    fs::UniqueFd err = OpenWriter(f.stderr_path);
    ASSERT_TRUE(out.Valid());
    ASSERT_TRUE(err.Valid());
    auto child = Child::Spawn({"/bin/sh", "-c", "printf 'hello\\nworld'; printf oops >&2"},
                              {{1, out.Get()}, {2, err.Get()}});
    ASSERT_TRUE(child);
    e->Started();
    ASSERT_TRUE(child->Wait());
  }  // the shim closes its ends once the output is complete
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(done.get());
  EXPECT_TRUE(e->Done());
  EXPECT_TRUE(e->Wait(std::chrono::seconds(0)));
  ExecOutput o = e->TakeOutput();
  EXPECT_EQ(o.stdout_data, "hello\nworld");
  EXPECT_EQ(o.stderr_data, "oops");
  EXPECT_EQ(o.stdout_dropped, 0u);
  // A late OnDone is answered too.
  auto late = Done(*e);
  ASSERT_EQ(late.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(late.get());
  std::string dir = f.dir;
  ASSERT_TRUE(e->Close());
  EXPECT_FALSE(Exists(dir));
  EXPECT_TRUE(Exists(root_));
}

TEST_F(ExecIoTest, NoEofBeforeStarted) {
  std::mutex mu;
  std::string seen;
  auto e =
      ExecIo::Create(io_.Io(), root_, "exec1", {.on_output = [&](StreamType, std::string_view d) {
                       std::lock_guard lock(mu);
                       seen.append(d);
                     }});
  ASSERT_TRUE(e);
  auto done = Done(*e);
  {
    // The process writes and exits before the caller gets to Started(). The ends opened exactly
    // as the shim opens them: read-write, non-blocking.
    fs::UniqueFd out(::open(e->Fifos().stdout_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    fs::UniqueFd err(::open(e->Fifos().stderr_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(out.Valid());
    ASSERT_TRUE(err.Valid());
    ASSERT_EQ(::write(out.Get(), "early", 5), 5);
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return seen == "early";
  }));
  // Read, and every writer but the placeholders gone: still not done.
  EXPECT_FALSE(e->Done());
  EXPECT_TRUE(e->Wait(std::chrono::milliseconds(1)).error().Is(Errc::kDeadlineExceeded));
  e->Started();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(done.get());
  EXPECT_EQ(e->TakeOutput().stdout_data, "early");
}

TEST_F(ExecIoTest, OutputBeyondTheCapIsReadAndDropped) {
  constexpr size_t kCap = size_t{1024} * 1024;
  auto e = ExecIo::Create(io_.Io(), root_, "exec1", {.max_output = kCap});
  ASSERT_TRUE(e);
  auto done = Done(*e);
  {
    fs::UniqueFd out = OpenWriter(e->Fifos().stdout_path);
    fs::UniqueFd err = OpenWriter(e->Fifos().stderr_path);
    // 4 MiB on stdout, 2 MiB + 1 on stderr: a FIFO holds 64 KiB, so the writer only gets
    // through if everything is read.
    auto child =
        Child::Spawn({"/bin/sh", "-c", "head -c 4194304 /dev/zero; head -c 2097153 /dev/zero >&2"},
                     {{1, out.Get()}, {2, err.Get()}});
    ASSERT_TRUE(child);
    e->Started();
    auto status = child->Wait();
    ASSERT_TRUE(status) << "the writer was blocked";
    EXPECT_EQ(*status, 0);
  }
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(done.get());
  ExecOutput o = e->TakeOutput();
  EXPECT_EQ(o.stdout_data, std::string(kCap, '\0'));
  EXPECT_EQ(o.stdout_dropped, 4194304u - kCap);
  EXPECT_EQ(o.stderr_data.size(), kCap);
  EXPECT_EQ(o.stderr_dropped, 2097153u - kCap);
}

TEST_F(ExecIoTest, CancelStopsWaitingAndCloseCleansUp) {
  auto e = ExecIo::Create(io_.Io(), root_, "exec1");
  ASSERT_TRUE(e);
  auto done = Done(*e);
  // A background child keeps the output open: EOF never comes.
  fs::UniqueFd out = OpenWriter(e->Fifos().stdout_path);
  ASSERT_EQ(::write(out.Get(), "partial", 7), 7);
  e->Started();
  EXPECT_TRUE(e->Wait(std::chrono::milliseconds(1)).error().Is(Errc::kDeadlineExceeded));
  e->Cancel();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(done.get().error().Is(Errc::kCanceled));
  EXPECT_TRUE(e->Wait(std::chrono::seconds(0)).error().Is(Errc::kCanceled));
  // What was readable is kept.
  EXPECT_EQ(e->TakeOutput().stdout_data, "partial");
  std::string dir = e->Fifos().dir;
  EXPECT_TRUE(Exists(dir));
  ASSERT_TRUE(e->Close());
  EXPECT_FALSE(Exists(dir));
  e->Cancel();              // idempotent
  EXPECT_TRUE(e->Close());  // idempotent
}

TEST_F(ExecIoTest, DestroyingItCancels) {
  std::future<Status> done;
  std::string dir;
  {
    auto e = ExecIo::Create(io_.Io(), root_, "exec1");
    ASSERT_TRUE(e);
    done = Done(*e);
    dir = e->Fifos().dir;
  }
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(done.get().error().Is(Errc::kCanceled));
  EXPECT_FALSE(Exists(dir));
}

TEST_F(ExecIoTest, TtyWithStdin) {
  std::mutex mu;
  std::string live;
  auto e = ExecIo::Create(io_.Io(), root_, "exec1",
                          {.stdin = true,
                           .tty = true,
                           .max_output = 0,
                           .on_output = [&](StreamType s, std::string_view d) {
                             std::lock_guard lock(mu);
                             EXPECT_EQ(s, StreamType::kStdout);
                             live.append(d);
                           }});
  ASSERT_TRUE(e) << e.error().ToString();
  const FifoSet& f = e->Fifos();
  EXPECT_EQ(f.stderr_path, "");
  EXPECT_EQ(f.stdin_path, f.dir + "/exec1-stdin");
  EXPECT_TRUE(f.terminal);
  auto done = Done(*e);
  std::promise<Status> written;
  ASSERT_TRUE(e->WriteStdin("ping\n", [&](Status st) { written.set_value(std::move(st)); }));
  {
    // The shim opens its stdin end too before the exec runs (stdin must not be closed before
    // that: the data would be lost and EOF never seen).
    fs::UniqueFd out = OpenWriter(f.stdout_path);
    fs::UniqueFd in(::open(f.stdin_path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(in.Valid());
    auto child = Child::Spawn({"/bin/cat"}, {{0, in.Get()}, {1, out.Get()}});
    in.Reset();
    ASSERT_TRUE(child);
    e->Started();
    auto w = written.get_future();
    ASSERT_EQ(w.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    EXPECT_TRUE(w.get());
    e->CloseStdin();
    EXPECT_TRUE(e->WriteStdin("late", nullptr).error().Is(Errc::kFailedPrecondition));
    auto status = child->Wait();
    ASSERT_TRUE(status) << "cat did not see EOF on its stdin";
  }
  ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(done.get());
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(live, "ping\n");
  }
  ExecOutput o = e->TakeOutput();
  EXPECT_EQ(o.stdout_data, "");  // max_output 0: nothing kept
  EXPECT_EQ(o.stdout_dropped, 5u);
}

TEST_F(ExecIoTest, NoStdin) {
  auto e = ExecIo::Create(io_.Io(), root_, "exec1");
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->WriteStdin("x", nullptr).error().Is(Errc::kNotFound));
  EXPECT_TRUE(ExecIo::Create(io_.Io(), root_, "a/b").error().Is(Errc::kInvalidArgument));
}

}  // namespace
}  // namespace berth::cri::io
