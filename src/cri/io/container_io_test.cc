#include "cri/io/container_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "cri/io/test_util.h"

namespace berth::cri::io {
namespace {

using testing::Child;
using testing::IoThread;
using testing::ReadAll;
using testing::WaitFor;

struct Rec {
  std::string stream;
  char tag;
  std::string content;
  bool operator==(const Rec&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << r.stream << " " << r.tag << " [" << r.content << "]";
}

// Go's RFC3339Nano in UTC: a valid time, 'Z', a fraction without trailing zeros.
bool IsTimestamp(const std::string& ts) {
  if (!ParseRfc3339(ts) || ts.size() < 20 || ts.back() != 'Z') {
    return false;
  }
  auto dot = ts.find('.');
  return dot == std::string::npos || (ts.size() - dot > 2 && ts[ts.size() - 2] != '0');
}

// Parses a CRI log; every line must be a well-formed record. (No std::regex: it recurses per
// character and 16 KiB lines overflow the stack under ASan.)
std::vector<Rec> ParseLog(const std::string& text) {
  std::vector<Rec> out;
  auto lines = testing::SplitLines(text);
  EXPECT_EQ(lines.back(), "") << "log does not end with a newline";
  lines.pop_back();
  for (const auto& l : lines) {
    auto sp1 = l.find(' ');
    auto sp2 = sp1 == std::string::npos ? sp1 : l.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || l.size() < sp2 + 3 || l[sp2 + 2] != ' ' ||
        !IsTimestamp(l.substr(0, sp1))) {
      ADD_FAILURE() << "not a CRI record: [" << l << "]";
      continue;
    }
    Rec r{l.substr(sp1 + 1, sp2 - sp1 - 1), l[sp2 + 1], l.substr(sp2 + 3)};
    if ((r.stream != "stdout" && r.stream != "stderr") || (r.tag != 'F' && r.tag != 'P')) {
      ADD_FAILURE() << "not a CRI record: [" << l << "]";
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Rec> Only(const std::vector<Rec>& recs, const std::string& stream) {
  std::vector<Rec> out;
  for (const auto& r : recs) {
    if (r.stream == stream) {
      out.push_back(r);
    }
  }
  return out;
}

// Lines in a file being written: a torn last record is not counted.
size_t CountLines(const std::string& path) {
  std::string text = ReadAll(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class ContainerIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = fs::TempDir::Create("cri-io-");
    ASSERT_TRUE(t);
    tmp_.emplace(std::move(*t));
    root_ = tmp_->Path() + "/containers/c1/io";
    log_path_ = tmp_->Path() + "/logs/c1/0.log";
  }

  std::shared_ptr<LogFile> OpenLog() {
    auto log = LogFile::Open(log_path_);
    EXPECT_TRUE(log) << log.error().ToString();
    return log ? *log : nullptr;
  }

  // Declared first: destroyed last, after every ContainerIo a test made.
  IoThread io_;
  std::optional<fs::TempDir> tmp_;
  std::string root_;
  std::string log_path_;
};

TEST_F(ContainerIoTest, CreateMakesTheFifosAndCloseRemovesTheDir) {
  auto cio = ContainerIo::Create(root_, "c1", true, false);
  ASSERT_TRUE(cio) << cio.error().ToString();
  const FifoSet& f = cio->Fifos();
  EXPECT_EQ(f.dir.substr(0, root_.size() + 1), root_ + "/");
  EXPECT_EQ(f.stdin_path, f.dir + "/c1-stdin");
  EXPECT_EQ(f.stdout_path, f.dir + "/c1-stdout");
  EXPECT_EQ(f.stderr_path, f.dir + "/c1-stderr");
  EXPECT_FALSE(f.terminal);
  struct stat st {};
  ASSERT_EQ(::stat(f.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& p : {f.stdin_path, f.stdout_path, f.stderr_path}) {
    ASSERT_EQ(::lstat(p.c_str(), &st), 0) << p;
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << p;
  }
  EXPECT_TRUE(cio->HasStdin());
  ASSERT_TRUE(cio->Close());
  EXPECT_FALSE(Exists(f.dir));
  EXPECT_TRUE(Exists(root_));
  EXPECT_TRUE(cio->Close());  // idempotent

  // No stdin; tty: no stderr.
  auto tty = ContainerIo::Create(root_, "c1", false, true);
  ASSERT_TRUE(tty);
  EXPECT_EQ(tty->Fifos().stdin_path, "");
  EXPECT_EQ(tty->Fifos().stderr_path, "");
  EXPECT_TRUE(tty->Fifos().terminal);
  EXPECT_FALSE(tty->HasStdin());
  std::string dir = tty->Fifos().dir;
  {
    ContainerIo moved = std::move(*tty);  // the destructor detaches: the FIFOs stay
  }
  EXPECT_TRUE(Exists(dir));
  auto again = ContainerIo::Reattach(FifoSet{.stdout_path = dir + "/c1-stdout", .terminal = true});
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_TRUE(again->Close());  // Close removes them (and their now empty dir)
  EXPECT_FALSE(Exists(dir));

  EXPECT_TRUE(ContainerIo::Create(root_, "a/b", false, false).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(ContainerIo::Create(root_, "", false, false).error().Is(Errc::kInvalidArgument));
}

TEST_F(ContainerIoTest, ChildOutputEndsUpInTheLogAndCloseFlushesThePartialLine) {
  auto cio = ContainerIo::Create(root_, "c1", false, false);
  ASSERT_TRUE(cio);
  auto log = OpenLog();
  ASSERT_TRUE(cio->Start(io_.Io(), log));
  const FifoSet& f = cio->Fifos();
  auto writer = Child::Spawn({"/bin/sh", "-c",
                              R"(printf 'out1\nout2\r\n\n' >"$1"; printf 'err1\npartial' >"$2")",
                              "sh", f.stdout_path, f.stderr_path});
  ASSERT_TRUE(writer);
  auto status = writer->Wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
  // Complete lines arrive while the container runs; the partial one only at Close.
  ASSERT_TRUE(WaitFor([&] { return CountLines(log_path_) == 4; }));
  ASSERT_TRUE(cio->Close());
  auto recs = ParseLog(ReadAll(log_path_));
  EXPECT_EQ(
      Only(recs, "stdout"),
      (std::vector<Rec>{{"stdout", 'F', "out1"}, {"stdout", 'F', "out2"}, {"stdout", 'F', ""}}));
  EXPECT_EQ(Only(recs, "stderr"),
            (std::vector<Rec>{{"stderr", 'F', "err1"}, {"stderr", 'P', "partial"}}));
  EXPECT_FALSE(Exists(f.dir));
}

TEST_F(ContainerIoTest, CloseDrainsWhatIsStillInTheFifo) {
  auto cio = ContainerIo::Create(root_, "c1", false, false);
  ASSERT_TRUE(cio);
  // The shim's end, opened as the shim does; written before Start, so the data waits in the FIFO.
  fs::UniqueFd shim_out(::open(cio->Fifos().stdout_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(shim_out.Valid());
  ASSERT_EQ(::write(shim_out.Get(), "a\nb", 3), 3);
  auto log = OpenLog();
  // A clock far in the past: the log's records cannot come from anywhere else.
  ASSERT_TRUE(cio->Start(io_.Io(), log, kDefaultMaxLineSize, [] { return FromUnixNanos(0); }));
  ASSERT_TRUE(cio->Close());
  EXPECT_EQ(ReadAll(log_path_),
            "1970-01-01T00:00:00Z stdout F a\n"
            "1970-01-01T00:00:00Z stdout P b\n");
}

TEST_F(ContainerIoTest, ConcurrentStdoutAndStderrWritersProduceWholeRecords) {
  auto cio = ContainerIo::Create(root_, "c1", false, false);
  ASSERT_TRUE(cio);
  auto log = OpenLog();
  ASSERT_TRUE(cio->Start(io_.Io(), log, 100));
  const FifoSet& f = cio->Fifos();
  // Lines longer than the limit too, so P records interleave with the other stream's.
  const std::string script =
      R"(i=0; while [ $i -lt 2000 ]; do echo "$2 line $i $3"; i=$((i+1)); done >"$1")";
  const std::string xs(110, 'x');
  auto out = Child::Spawn({"/bin/sh", "-c", script, "sh", f.stdout_path, "o", xs});
  auto err = Child::Spawn({"/bin/sh", "-c", script, "sh", f.stderr_path, "e", xs});
  ASSERT_TRUE(out);
  ASSERT_TRUE(err);
  ASSERT_TRUE(out->Wait());
  ASSERT_TRUE(err->Wait());
  ASSERT_TRUE(cio->Close());
  auto recs = ParseLog(ReadAll(log_path_));
  for (const auto& [stream, tag] : {std::pair{"stdout", "o"}, std::pair{"stderr", "e"}}) {
    auto mine = Only(recs, stream);
    ASSERT_EQ(mine.size(), 4000u) << stream;
    for (size_t i = 0; i < 2000; ++i) {
      std::string line = std::string(tag) + " line " + std::to_string(i) + " " + xs;
      EXPECT_EQ(mine[2 * i], (Rec{stream, 'P', line.substr(0, 100)}));
      EXPECT_EQ(mine[2 * i + 1], (Rec{stream, 'F', line.substr(100)}));
    }
  }
}

TEST_F(ContainerIoTest, TtyLogsOnlyStdout) {
  auto cio = ContainerIo::Create(root_, "c1", false, true);
  ASSERT_TRUE(cio);
  auto log = OpenLog();
  ASSERT_TRUE(cio->Start(io_.Io(), log));
  auto w = Child::Spawn(
      {"/bin/sh", "-c", R"(printf 'tty out\r\n' >"$1")", "sh", cio->Fifos().stdout_path});
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Wait());
  ASSERT_TRUE(cio->Close());
  EXPECT_EQ(ParseLog(ReadAll(log_path_)), (std::vector<Rec>{{"stdout", 'F', "tty out"}}));
}

TEST_F(ContainerIoTest, StdinIsForwardedAndCloseStdinGivesEof) {
  auto cio = ContainerIo::Create(root_, "c1", true, false);
  ASSERT_TRUE(cio);
  EXPECT_TRUE(cio->WriteStdin("x", nullptr).error().Is(Errc::kFailedPrecondition));
  auto log = OpenLog();
  ASSERT_TRUE(cio->Start(io_.Io(), log));
  const FifoSet& f = cio->Fifos();
  // The "container": cat from its stdin to its stdout; it exits at stdin's EOF.
  auto cat =
      Child::Spawn({"/bin/sh", "-c", R"(exec cat <"$1" >"$2")", "sh", f.stdin_path, f.stdout_path});
  ASSERT_TRUE(cat);
  std::promise<Status> first;
  std::promise<Status> second;
  ASSERT_TRUE(cio->WriteStdin("hello\n", [&](Status st) { first.set_value(std::move(st)); }));
  ASSERT_TRUE(cio->WriteStdin(std::string(200'000, 'y') + "\n",
                              [&](Status st) { second.set_value(std::move(st)); }));
  auto f1 = first.get_future();
  auto f2 = second.get_future();
  ASSERT_EQ(f1.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(f1.get());
  ASSERT_EQ(f2.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_TRUE(f2.get());
  cio->CloseStdin();
  EXPECT_TRUE(cio->WriteStdin("late", nullptr).error().Is(Errc::kFailedPrecondition));
  auto status = cat->Wait();
  ASSERT_TRUE(status) << "cat did not see EOF on its stdin";
  EXPECT_EQ(*status, 0);
  ASSERT_TRUE(cio->Close());
  auto recs = ParseLog(ReadAll(log_path_));
  ASSERT_GE(recs.size(), 2u);
  EXPECT_EQ(recs[0], (Rec{"stdout", 'F', "hello"}));
  // 200000 bytes at the default 16 KiB limit: 12 P records and an F.
  ASSERT_EQ(recs.size(), 1u + 13u);
  std::string joined;
  for (size_t i = 1; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].tag, i + 1 < recs.size() ? 'P' : 'F');
    joined += recs[i].content;
  }
  EXPECT_EQ(joined, std::string(200'000, 'y'));

  auto no_stdin = ContainerIo::Create(root_, "c2", false, false);
  ASSERT_TRUE(no_stdin);
  EXPECT_TRUE(no_stdin->WriteStdin("x", nullptr).error().Is(Errc::kNotFound));
}

TEST_F(ContainerIoTest, WithoutALogOutputIsStillDrained) {
  auto cio = ContainerIo::Create(root_, "c1", false, false);
  ASSERT_TRUE(cio);
  ASSERT_TRUE(cio->Start(io_.Io(), nullptr));
  // 1 MiB is far more than a FIFO holds: the writer only finishes if we read.
  auto w = Child::Spawn(
      {"/bin/sh", "-c", R"(head -c 1048576 /dev/zero >"$1")", "sh", cio->Fifos().stdout_path});
  ASSERT_TRUE(w);
  auto status = w->Wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
  ASSERT_TRUE(cio->Close());
  EXPECT_FALSE(Exists(log_path_));
}

TEST_F(ContainerIoTest, SinksSeeNewRawOutputUntilRemovedOrClosed) {
  auto cio = ContainerIo::Create(root_, "c1", false, false);
  ASSERT_TRUE(cio);
  fs::UniqueFd shim_out(::open(cio->Fifos().stdout_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  fs::UniqueFd shim_err(::open(cio->Fifos().stderr_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(shim_out.Valid());
  ASSERT_TRUE(shim_err.Valid());
  auto log = OpenLog();
  ASSERT_TRUE(cio->Start(io_.Io(), log));
  ASSERT_EQ(::write(shim_out.Get(), "before\n", 7), 7);
  ASSERT_TRUE(WaitFor([&] { return CountLines(log_path_) == 1; }));

  struct Collected {
    std::mutex mu;
    std::string out;
    std::string err;
    int closes = 0;
  };
  auto a = std::make_shared<Collected>();
  auto b = std::make_shared<Collected>();
  auto sink = [](const std::shared_ptr<Collected>& c) {
    return OutputSink{.write =
                          [c](StreamType s, std::string_view d) {
                            std::lock_guard lock(c->mu);
                            (s == StreamType::kStdout ? c->out : c->err).append(d);
                            return true;
                          },
                      .close =
                          [c] {
                            std::lock_guard lock(c->mu);
                            ++c->closes;
                          }};
  };
  uint64_t ida = cio->AddSink(sink(a));
  uint64_t idb = cio->AddSink(sink(b));
  EXPECT_NE(ida, 0u);
  EXPECT_NE(ida, idb);
  // A sink that leaves by returning false after its first chunk.
  std::atomic<int> once_calls{0};
  cio->AddSink(OutputSink{.write = [&](StreamType, std::string_view) {
    ++once_calls;
    return false;
  }});
  ASSERT_EQ(::write(shim_out.Get(), "raw\r\nno newline", 15), 15);
  ASSERT_EQ(::write(shim_err.Get(), "oops", 4), 4);
  auto got = [](const std::shared_ptr<Collected>& c, const std::string& out,
                const std::string& err) {
    return WaitFor([&] {
      std::lock_guard lock(c->mu);
      return c->out == out && c->err == err;
    });
  };
  ASSERT_TRUE(got(a, "raw\r\nno newline", "oops"));
  ASSERT_TRUE(got(b, "raw\r\nno newline", "oops"));
  cio->RemoveSink(idb);
  ASSERT_EQ(::write(shim_out.Get(), "!\n", 2), 2);
  ASSERT_TRUE(got(a, "raw\r\nno newline!\n", "oops"));
  ASSERT_TRUE(cio->Close());
  {
    std::lock_guard lock(b->mu);
    EXPECT_EQ(b->out, "raw\r\nno newline");  // nothing after RemoveSink
    EXPECT_EQ(b->closes, 0);
  }
  EXPECT_EQ(a->closes, 1);
  EXPECT_EQ(once_calls.load(), 1);
  // Closed: a new sink is closed at once.
  auto c = std::make_shared<Collected>();
  EXPECT_EQ(cio->AddSink(sink(c)), 0u);
  EXPECT_EQ(c->closes, 1);
  // The log has the records too, "before" included (sinks only see new output).
  EXPECT_EQ(ParseLog(ReadAll(log_path_)), (std::vector<Rec>{{"stdout", 'F', "before"},
                                                            {"stdout", 'F', "raw"},
                                                            {"stdout", 'F', "no newline!"},
                                                            {"stderr", 'P', "oops"}}));
}

TEST_F(ContainerIoTest, ReattachAfterRestartLogsWithANewLogger) {
  // The previous daemon's FIFOs, still held by the shim.
  auto fifos = CreateFifoSet(root_, "c1", true, false);
  ASSERT_TRUE(fifos);
  fs::UniqueFd shim_out(::open(fifos->stdout_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(shim_out.Valid());
  ASSERT_EQ(::write(shim_out.Get(), "while down\n", 11), 11);

  FifoSet known{.stdin_path = fifos->stdin_path,
                .stdout_path = fifos->stdout_path,
                .stderr_path = fifos->stderr_path};  // dir unknown: as the task reports it
  auto cio = ContainerIo::Reattach(known);
  ASSERT_TRUE(cio) << cio.error().ToString();
  EXPECT_EQ(cio->Fifos().dir, fifos->dir);
  auto log = OpenLog();
  ASSERT_TRUE(cio->Start(io_.Io(), log));
  ASSERT_EQ(::write(shim_out.Get(), "after\n", 6), 6);
  ASSERT_TRUE(WaitFor([&] { return CountLines(log_path_) == 2; }));
  EXPECT_EQ(ParseLog(ReadAll(log_path_)),
            (std::vector<Rec>{{"stdout", 'F', "while down"}, {"stdout", 'F', "after"}}));
  ASSERT_TRUE(cio->Close());
  EXPECT_FALSE(Exists(fifos->stdout_path));
  EXPECT_FALSE(Exists(fifos->dir));  // empty, so removed

  // Errors.
  EXPECT_TRUE(ContainerIo::Reattach(known).error().Is(Errc::kNotFound));
  EXPECT_TRUE(ContainerIo::Reattach(FifoSet{}).error().Is(Errc::kInvalidArgument));
  ASSERT_TRUE(fs::WriteFileAtomic(tmp_->Path() + "/regular", "x"));
  EXPECT_TRUE(ContainerIo::Reattach(FifoSet{.stdout_path = tmp_->Path() + "/regular"})
                  .error()
                  .Is(Errc::kInvalidArgument));
}

TEST_F(ContainerIoTest, StartErrors) {
  auto cio = ContainerIo::Create(root_, "c1", true, false);
  ASSERT_TRUE(cio);
  // A missing FIFO: NotFound, nothing left open, Start can be retried once it is back.
  ASSERT_EQ(::unlink(cio->Fifos().stderr_path.c_str()), 0);
  EXPECT_TRUE(cio->Start(io_.Io(), nullptr).error().Is(Errc::kNotFound));
  ASSERT_EQ(::mkfifo(cio->Fifos().stderr_path.c_str(), 0700), 0);
  ASSERT_TRUE(cio->Start(io_.Io(), nullptr));
  EXPECT_TRUE(cio->Start(io_.Io(), nullptr).error().Is(Errc::kFailedPrecondition));
  ASSERT_TRUE(cio->Close());
  EXPECT_TRUE(cio->Start(io_.Io(), nullptr).error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE(cio->WriteStdin("x", nullptr).error().Is(Errc::kFailedPrecondition));
}

}  // namespace
}  // namespace berth::cri::io
