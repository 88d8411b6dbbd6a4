#include "runtime/shim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"

namespace berth::runtime {

Result<std::shared_ptr<LogCopier>> LogCopier::Open(asio::io_context& io, const std::string& path) {
  if (::mkfifo(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "create shim log fifo " + path);
  }
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open shim log fifo " + path);
  auto copier = std::make_shared<LogCopier>(io);
  asio::error_code ec;
  copier->stream_.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return Unknown("watch shim log fifo " + path + ": " + ec.message());
  }
  asio::post(io, [copier] { copier->ReadMore(); });
  return copier;
}

void LogCopier::ReadMore() {
  auto self = shared_from_this();
  stream_.async_read_some(asio::buffer(buf_), [self](const asio::error_code& ec, size_t n) {
    if (ec) {
      return;  // closed (operation_aborted) or a read error: stop copying
    }
    self->Copy(n);
    self->ReadMore();
  });
}

void LogCopier::Copy(size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(STDERR_FILENO, buf_ + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(w);
  }
}

void LogCopier::Close() {
  asio::post(io_, [self = shared_from_this()] {
    asio::error_code ec;
    self->stream_.close(ec);
  });
}

Shim::~Shim() { Close(); }

void Shim::Close() {
  if (closed_.exchange(true)) return;
  client_->Close();
  if (log_) log_->Close();
}

ttrpc::Metadata Shim::Meta() const {
  ttrpc::Metadata md;
  md.Add(ttrpc::kNamespaceKey, bundle_.Namespace());
  return md;
}

}  // namespace berth::runtime
