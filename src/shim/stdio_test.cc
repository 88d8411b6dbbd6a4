#include "shim/stdio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "common/fs.h"

namespace berth::shim {
namespace {

TEST(StdioUriTest, Schemes) {
  EXPECT_EQ(ParseStdioUri("")->scheme, StdioScheme::kNone);
  auto fifo = ParseStdioUri("/run/containerd/fifo/123/c-stdout");
  ASSERT_TRUE(fifo);
  EXPECT_EQ(fifo->scheme, StdioScheme::kFifo);
  EXPECT_EQ(fifo->path, "/run/containerd/fifo/123/c-stdout");
  auto f2 = ParseStdioUri("fifo:///tmp/x");
  EXPECT_EQ(f2->scheme, StdioScheme::kFifo);
  EXPECT_EQ(f2->path, "/tmp/x");
  auto file = ParseStdioUri("file:///var/log/c%201.log");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->scheme, StdioScheme::kFile);
  EXPECT_EQ(file->path, "/var/log/c 1.log");
  auto bin = ParseStdioUri("binary:///usr/bin/logger?tag=web&verbose&x=a%2Bb");
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->scheme, StdioScheme::kBinary);
  EXPECT_EQ(bin->path, "/usr/bin/logger");
  ASSERT_EQ(bin->args.size(), 3u);
  EXPECT_EQ(bin->args[0], (std::pair<std::string, std::string>{"tag", "web"}));
  EXPECT_EQ(bin->args[1].first, "verbose");
  EXPECT_EQ(bin->args[2].second, "a+b");
  EXPECT_TRUE(ParseStdioUri("http://x/y").error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(ParseStdioUri("file://relative").error().Is(Errc::kInvalidArgument));
}

TEST(ProcessIoTest, CopiesPipeToFifoAndStdinEofClosesProcessStdin) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string in = dir->Path() + "/stdin";
  std::string out = dir->Path() + "/stdout";
  ASSERT_EQ(::mkfifo(in.c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(out.c_str(), 0600), 0);
  // The client's ends, as ctr opens them.
  fs::UniqueFd client_out(::open(out.c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_TRUE(client_out.Valid());

  asio::io_context io;
  auto pio = ProcessIo::Create(io, Stdio{.stdin_path = in, .stdout_path = out}, 0, 0);
  ASSERT_TRUE(pio) << pio.error().ToString();
  // The "process": what the runtime would have got.
  int proc_stdin = -1;
  int proc_stdout = -1;
  for (auto [target, fd] : (*pio)->RuntimeFds()) {
    (target == 0 ? proc_stdin : proc_stdout) = ::dup(fd);
  }
  ASSERT_GE(proc_stdin, 0);
  ASSERT_GE(proc_stdout, 0);
  ::fcntl(proc_stdin, F_SETFL, O_NONBLOCK);
  ASSERT_TRUE((*pio)->Started());
  io.poll();  // no writer on stdin yet: must not count as EOF

  fs::UniqueFd client_in(::open(in.c_str(), O_WRONLY));
  ASSERT_TRUE(client_in.Valid());
  ASSERT_EQ(::write(client_in.Get(), "ping", 4), 4);
  client_in.Reset();  // EOF on the FIFO
  ASSERT_EQ(::write(proc_stdout, "hello\n", 6), 6);
  ::close(proc_stdout);

  bool done = false;
  (*pio)->OnOutputDone([&] { done = true; });
  while (!done) {
    io.run_one();
  }
  // Let the stdin copy finish too.
  std::string got_in;
  char buf[64];
  while (true) {
    io.poll();
    ssize_t n = ::read(proc_stdin, buf, sizeof(buf));
    if (n > 0) {
      got_in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      break;  // EOF: the shim closed the process's stdin after the FIFO's EOF
    }
    io.run_one();
  }
  EXPECT_EQ(got_in, "ping");
  ssize_t n = ::read(client_out.Get(), buf, sizeof(buf));
  ASSERT_EQ(n, 6);
  EXPECT_EQ(std::string(buf, 6), "hello\n");
  ::close(proc_stdin);
}

TEST(ProcessIoTest, LargeOutputWithBackpressureArrivesIntact) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string out = dir->Path() + "/stdout";
  ASSERT_EQ(::mkfifo(out.c_str(), 0600), 0);
  fs::UniqueFd client(::open(out.c_str(), O_RDONLY | O_NONBLOCK));
  asio::io_context io;
  auto pio = ProcessIo::Create(io, Stdio{.stdout_path = out}, 0, 0);
  ASSERT_TRUE(pio) << pio.error().ToString();
  int proc_stdout = ::dup((*pio)->RuntimeFds().at(0).second);
  ASSERT_TRUE((*pio)->Started());
  // 1 MiB, far more than pipe + FIFO buffers hold: the copy must wait for the reader.
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>('a' + i % 26);
  }
  std::thread writer([&] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(proc_stdout, data.data() + off, data.size() - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
      }
    }
    ::close(proc_stdout);
  });
  std::string got;
  char buf[8192];
  bool done = false;
  (*pio)->OnOutputDone([&] { done = true; });
  while (true) {
    io.poll();
    ssize_t n = ::read(client.Get(), buf, sizeof(buf));
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
    } else if (n == 0 && done) {
      break;  // EOF after the shim closed its end
    } else {
      io.run_one_for(std::chrono::milliseconds(10));
    }
  }
  writer.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(ProcessIoTest, NullStdioGivesTheRuntimeNothing) {
  asio::io_context io;
  auto pio = ProcessIo::Create(io, Stdio{}, 0, 0);
  ASSERT_TRUE(pio);
  EXPECT_TRUE((*pio)->RuntimeFds().empty());
  ASSERT_TRUE((*pio)->Started());
  EXPECT_TRUE((*pio)->OutputDone());
}

TEST(ProcessIoTest, BinaryLoggerGetsTheProcessOutput) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string d = dir->Path();
  // A logging binary as containerd defines them: fd 3 stdout, fd 4 stderr, fd 5 closed when
  // ready; only CONTAINER_ID and CONTAINER_NAMESPACE in its environment.
  std::string logger = d + "/logger";
  std::string script =
      "#!/bin/sh\n"
      "echo \"$* $CONTAINER_ID $CONTAINER_NAMESPACE ${HOME:-nohome}\" > " +
      d +
      "/args\n"
      "exec 5>&-\n"
      "/bin/cat <&3 > " +
      d +
      "/out &\n"
      "/bin/cat <&4 > " +
      d +
      "/err &\n"
      "wait\n";
  ASSERT_TRUE(fs::WriteFileAtomic(logger, script, 0755));
  asio::io_context io;
  auto pio = ProcessIo::Create(
      io, Stdio{.stdout_path = "binary://" + logger + "?tag=web", .stderr_path = "x"}, 0, 0, "c1",
      "ns1");
  ASSERT_TRUE(pio) << pio.error().ToString();
  ASSERT_GT((*pio)->LoggerPid(), 0);
  pid_t logger_pid = (*pio)->LoggerPid();
  int out = -1;
  int err = -1;
  for (auto [target, fd] : (*pio)->RuntimeFds()) {
    (target == 1 ? out : err) = ::dup(fd);
  }
  ASSERT_GE(out, 0);
  ASSERT_GE(err, 0);
  ASSERT_TRUE((*pio)->Started());
  ASSERT_EQ(::write(out, "to-out\n", 7), 7);
  ASSERT_EQ(::write(err, "to-err\n", 7), 7);
  ::close(out);
  ::close(err);
  int status = 0;
  ASSERT_EQ(::waitpid(logger_pid, &status, 0), logger_pid);
  EXPECT_EQ(*fs::ReadFile(d + "/out"), "to-out\n");
  EXPECT_EQ(*fs::ReadFile(d + "/err"), "to-err\n");
  EXPECT_EQ(*fs::ReadFile(d + "/args"), "tag web c1 ns1 nohome\n");
}

TEST(ProcessIoTest, FileSchemeAppends) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string path = dir->Path() + "/logs/c.log";
  std::string uri = "file://" + path;
  asio::io_context io;
  auto pio = ProcessIo::Create(io, Stdio{.stdout_path = uri, .stderr_path = uri}, 0, 0);
  ASSERT_TRUE(pio) << pio.error().ToString();
  int out = -1;
  int err = -1;
  for (auto [target, fd] : (*pio)->RuntimeFds()) {
    (target == 1 ? out : err) = ::dup(fd);
  }
  ASSERT_TRUE((*pio)->Started());
  ASSERT_EQ(::write(out, "o\n", 2), 2);
  ::close(out);
  io.poll();
  ASSERT_EQ(::write(err, "e\n", 2), 2);
  ::close(err);
  bool done = false;
  (*pio)->OnOutputDone([&] { done = true; });
  while (!done) {
    io.run_one();
  }
  EXPECT_EQ(*fs::ReadFile(path), "o\ne\n");
}

}  // namespace
}  // namespace berth::shim
