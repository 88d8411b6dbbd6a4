#include "cri/io/fifo_stream.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log.h"

namespace berth::cri::io {
namespace {

constexpr size_t kReadBufferSize = size_t{32} * 1024;  // as the shim's copy buffer
// Per wake-up, so one busy container cannot hold the shared io thread for long.
constexpr size_t kReadBudgetPerWakeup = size_t{256} * 1024;
// What Stop(drain) reads at most: a FIFO holds 64 KiB by default; a writer still going strong
// cannot keep us here forever.
constexpr size_t kDrainBudget = size_t{4} * 1024 * 1024;

}  // namespace

FifoReader::FifoReader(asio::io_context& io, DataFn on_data, EndFn on_end)
    : sd_(io), on_data_(std::move(on_data)), on_end_(std::move(on_end)) {}

FifoReader::~FifoReader() {
  asio::error_code ignored;
  sd_.close(ignored);
}

Result<std::shared_ptr<FifoReader>> FifoReader::Create(asio::io_context& io, fs::UniqueFd fd,
                                                       DataFn on_data, EndFn on_end) {
  auto reader = std::make_shared<FifoReader>(io, std::move(on_data), std::move(on_end));
  asio::error_code ec;
  reader->sd_.assign(fd.Get(), ec);
  if (ec) {
    return Unknown("watch fifo: " + ec.message());
  }
  fd.Release();
  return reader;
}

void FifoReader::Start() {
  std::lock_guard lock(mu_);
  if (!ended_) {
    Arm();
  }
}

void FifoReader::Arm() {
  sd_.async_wait(asio::posix::stream_descriptor::wait_read,
                 [self = shared_from_this()](const asio::error_code& ec) { self->OnReadable(ec); });
}

void FifoReader::OnReadable(const asio::error_code& ec) {
  std::lock_guard lock(mu_);
  if (ended_) {
    return;  // Stop() closed the descriptor (operation_aborted)
  }
  if (ec) {
    log::L().With("error", ec.message()).Warn("cri io: waiting on fifo failed");
    End(true);
    return;
  }
  if (ReadAvailable(kReadBudgetPerWakeup) == ReadResult::kEnd) {
    End(true);
    return;
  }
  Arm();
}

FifoReader::ReadResult FifoReader::ReadAvailable(size_t budget) {
  // On the stack: an idle stream holds no buffer.
  std::array<char, kReadBufferSize> buf;
  size_t total = 0;
  while (total < budget) {
    ssize_t n = ::read(sd_.native_handle(), buf.data(), buf.size());
    if (n > 0) {
      total += static_cast<size_t>(n);
      if (on_data_) {
        on_data_(std::string_view(buf.data(), static_cast<size_t>(n)));
      }
      continue;
    }
    if (n == 0) {
      return ReadResult::kEnd;  // EOF: no writer left
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN) {
      return ReadResult::kAgain;
    }
    log::L().With("error", std::strerror(errno)).Warn("cri io: reading fifo failed");
    return ReadResult::kEnd;
  }
  return ReadResult::kAgain;
}

void FifoReader::End(bool eof) {
  ended_ = true;
  asio::error_code ignored;
  sd_.close(ignored);
  on_data_ = nullptr;
  if (auto fn = std::exchange(on_end_, nullptr)) {
    fn(eof);
  }
}

void FifoReader::Stop(bool drain) {
  std::lock_guard lock(mu_);
  if (ended_) {
    return;
  }
  if (drain && ReadAvailable(kDrainBudget) == ReadResult::kEnd) {
    End(true);
    return;
  }
  End(false);
}

FifoWriter::FifoWriter(asio::io_context& io) : io_(io), sd_(io) {}

FifoWriter::~FifoWriter() {
  asio::error_code ignored;
  sd_.close(ignored);
}

Result<std::shared_ptr<FifoWriter>> FifoWriter::Create(asio::io_context& io, fs::UniqueFd fd) {
  auto writer = std::make_shared<FifoWriter>(io);
  asio::error_code ec;
  writer->sd_.assign(fd.Get(), ec);
  if (ec) {
    return Unknown("watch fifo: " + ec.message());
  }
  fd.Release();
  return writer;
}

void FifoWriter::Post(DoneFn fn, Status st) {
  if (fn) {
    asio::post(io_, [fn = std::move(fn), st = std::move(st)]() mutable { fn(std::move(st)); });
  }
}

void FifoWriter::Write(std::string data, DoneFn done) {
  std::lock_guard lock(mu_);
  if (closed_ || close_when_drained_) {
    Post(std::move(done), Error(Errc::kCanceled, "stdin is closed"));
    return;
  }
  queue_.push_back(Pending{.data = std::move(data), .done = std::move(done)});
  if (!waiting_) {
    Pump();
  }
}

void FifoWriter::Pump() {
  while (!queue_.empty()) {
    Pending& p = queue_.front();
    while (p.off < p.data.size()) {
      ssize_t n = ::write(sd_.native_handle(), p.data.data() + p.off, p.data.size() - p.off);
      if (n >= 0) {
        p.off += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        // The FIFO is full: wait for the reader (the shim) to make room.
        waiting_ = true;
        sd_.async_wait(asio::posix::stream_descriptor::wait_write,
                       [self = shared_from_this()](const asio::error_code& ec) {
                         std::lock_guard lock(self->mu_);
                         self->waiting_ = false;
                         if (self->closed_) {
                           return;
                         }
                         if (ec) {
                           self->CloseLocked(Unknown("wait for stdin fifo: " + ec.message()));
                           return;
                         }
                         self->Pump();
                       });
        return;
      }
      CloseLocked(ErrnoError(errno, "write stdin fifo"));
      return;
    }
    Post(std::move(p.done), Ok());
    queue_.pop_front();
  }
  if (close_when_drained_) {
    CloseLocked(Error(Errc::kCanceled, "stdin is closed"));
  }
}

void FifoWriter::CloseLocked(const Error& why) {
  closed_ = true;
  asio::error_code ignored;
  sd_.close(ignored);
  for (auto& p : queue_) {
    Post(std::move(p.done), why);
  }
  queue_.clear();
}

void FifoWriter::CloseWhenDrained() {
  std::lock_guard lock(mu_);
  if (closed_) {
    return;
  }
  close_when_drained_ = true;
  if (!waiting_ && queue_.empty()) {
    CloseLocked(Error(Errc::kCanceled, "stdin is closed"));
  }
}

void FifoWriter::Close() {
  std::lock_guard lock(mu_);
  if (!closed_) {
    CloseLocked(Error(Errc::kCanceled, "stdin is closed"));
  }
}

}  // namespace berth::cri::io
