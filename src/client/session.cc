#include "client/session.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace berth::client {

namespace {

// connect(2) to the socket once before gRPC does: a missing, stale or forbidden socket is then
// an error at once that names the cause (gRPC retries such a dial until its deadline, and ctr
// waits its 10 s on a missing socket). Only a listener that does not answer waits for the
// timeout. The message starts as ctr's does, then says what to do.
Status Probe(const std::string& path) {
  auto failed = [&](Errc code, int err, std::string_view hint) {
    std::string cause = std::strerror(err);  // as Go words it: "connection refused"
    if (!cause.empty()) cause[0] = static_cast<char>(std::tolower(cause[0]));
    return Error(code, fmt::format("failed to dial {:?}: connection error: desc = \"transport: "
                                   "error while dialing: dial unix {}: connect: {}\" ({})",
                                   path, path, cause, hint));
  };
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
    return InvalidArgument(fmt::format("failed to dial {:?}: a unix socket path has 1 to {} bytes",
                                       path, sizeof(sa.sun_path) - 1));
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Ok();  // no socket to spare: let gRPC try and report
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  int err = rc == 0 ? 0 : errno;
  ::close(fd);
  struct stat st {};
  switch (err) {
    case 0:
    case EINTR:
    case EAGAIN:  // the listener's backlog is full: it exists, gRPC waits for it
      return Ok();
    case ENOENT:
    case ENOTDIR:
      return failed(Errc::kUnavailable, err,
                    "no berthd listens there: start berthd, or give its socket with --address");
    case ECONNREFUSED:
      if (::stat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        return failed(Errc::kUnavailable, err,
                      "the path is not a socket: give berthd's socket with --address");
      }
      return failed(Errc::kUnavailable, err,
                    "a stale socket: no berthd listens there any more; start berthd");
    case EACCES:
    case EPERM:
      return failed(Errc::kPermissionDenied, err, "berthd's socket is root's: run this as root");
    default:
      return failed(Errc::kUnavailable, err, "is berthd running there?");
  }
}

}  // namespace

Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                            std::chrono::nanoseconds connect_timeout) {
  std::string path = address;
  if (path.starts_with("unix://")) path.erase(0, 7);
  BERTH_TRY(Probe(path));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  auto channel =
      grpc::CreateCustomChannel("unix:" + path, grpc::InsecureChannelCredentials(), args);
  if (connect_timeout.count() == 0) connect_timeout = std::chrono::seconds(10);
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(connect_timeout);
  if (!channel->WaitForConnected(deadline)) {
    return Unavailable(fmt::format(
        "failed to dial {:?}: context deadline exceeded (something accepts connections there "
        "but does not answer as berthd: a hung berthd, or another program's socket)",
        address));
  }
  return channel;
}

Error FromGrpc(const grpc::Status& status) {
  return ErrorFromGrpc(static_cast<int>(status.error_code()), status.error_message());
}

std::unique_ptr<grpc::ClientContext> Session::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", ns_);
  if (timeout_.count() > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout_));
  }
  if (!lease_.empty()) ctx->AddMetadata("containerd-lease", lease_);
  return ctx;
}

}  // namespace berth::client
