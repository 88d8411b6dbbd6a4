// The ttrpc server's frame reader and request decoding: the input is written as is to a fresh
// connection of a server with one echo method and one typed method, then half-closed; the
// harness reads every answer until the server closes the connection.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include <google/protobuf/empty.pb.h>

#include "common/fs.h"
#include "fuzz/fuzz.h"
#include "ttrpc/ttrpc.h"

namespace {

using namespace berth;

// One server for the process; destroyed at exit (its temp dir and socket go with it).
struct Harness {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(io)};
  ttrpc::Server server{io};
  fs::TempDir dir = [] {
    auto d = fs::TempDir::Create("berth-fuzz-ttrpc-");
    if (!d) __builtin_trap();
    return std::move(*d);
  }();
  std::string path = dir.Path() + "/s";
  std::thread thread;

  ~Harness() {
    work.reset();
    io.stop();
    thread.join();  // then the server closes with its io_context stopped
  }

  Harness() {
    server.Register("fuzz.Echo", "Echo", [](ttrpc::CallContext, std::string p, ttrpc::Responder r) {
      r.Reply(std::move(p));
    });
    server.RegisterUnary<google::protobuf::Empty, google::protobuf::Empty>(
        "fuzz.Typed", "Call",
        [](const ttrpc::CallContext& ctx,
           const google::protobuf::Empty& req) -> Result<google::protobuf::Empty> {
          if (ctx.metadata.Get("fail")) return InvalidArgument("asked to fail");
          return req;
        });
    auto listener = ttrpc::Server::Listen(path);
    if (!listener || !server.Serve(std::move(*listener))) __builtin_trap();
    thread = std::thread([this] { io.run(); });
  }
};

}  // namespace

BERTH_FUZZ_TARGET(ttrpc) {
  static Harness harness;
  Harness* h = &harness;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) __builtin_trap();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, h->path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) __builtin_trap();
  // Write while reading answers, so neither side blocks on a full socket buffer.
  size_t written = 0;
  bool half_closed = false;
  char buf[65536];
  for (;;) {
    if (!half_closed && written == size) {
      ::shutdown(fd, SHUT_WR);
      half_closed = true;
    }
    pollfd p{.fd = fd, .events = static_cast<short>(POLLIN | (half_closed ? 0 : POLLOUT))};
    // The server closes a connection once its input ended and its calls are answered. poll is
    // interrupted now and then by libFuzzer's own timer signal: only a real timeout counts.
    int ready = ::poll(&p, 1, 5000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) __builtin_trap();  // no progress in 5 s: a hang
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, data + written, size - written, MSG_NOSIGNAL);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0) half_closed = true;  // the server closed first
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
    }
  }
  ::close(fd);
  return 0;
}
