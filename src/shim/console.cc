#include "shim/console.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace berth::shim {

Result<ConsoleSocket> ConsoleSocket::Create() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  std::string parent = runtime_dir != nullptr && *runtime_dir != '\0' ? runtime_dir : "/tmp";
  BERTH_ASSIGN_OR_RETURN(fs::TempDir dir, fs::TempDir::Create("pty", parent));
  std::string path = dir.Path() + "/pty.sock";
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("console socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  fs::UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.Valid()) {
    return ErrnoError(errno, "console socket");
  }
  if (::bind(sock.Get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(sock.Get(), 1) != 0) {
    return ErrnoError(errno, "failed to create OCI runtime console socket " + path);
  }
  return ConsoleSocket(std::move(dir), std::move(path), std::move(sock));
}

Result<fs::UniqueFd> ConsoleSocket::ReceiveMaster() {
  struct pollfd pfd = {.fd = listener_.Get(), .events = POLLIN};
  int ready = ::poll(&pfd, 1, 0);
  if (ready <= 0) {
    return Unavailable("failed to retrieve console master: the runtime did not connect to " +
                       path_);
  }
  fs::UniqueFd conn(::accept4(listener_.Get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.Valid()) {
    return ErrnoError(errno, "failed to retrieve console master");
  }
  return ReceiveFd(conn.Get());
}

Result<fs::UniqueFd> ReceiveFd(int sock) {
  char name[4096];
  struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return ErrnoError(errno, "failed to retrieve console master");
  }
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
      return fs::UniqueFd(fd);
    }
  }
  return Unavailable("failed to retrieve console master: no descriptor received");
}

}  // namespace berth::shim
