#pragma once
// Internal to cri/io: asynchronous reading and writing of one non-blocking FIFO descriptor on a
// caller's io_context, usable from any thread.
//
// Each object has one mutex that every use of its asio descriptor holds (asio objects are not
// thread-safe themselves), so a call from a CRI handler thread and a completion on the io thread
// never touch the descriptor at once. The reader delivers data with that mutex held: chunks come
// in order, never two at once, and none after Stop() returns.
#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::cri::io {

class FifoReader : public std::enable_shared_from_this<FifoReader> {
 public:
  using DataFn = std::function<void(std::string_view)>;
  // `eof` true: the FIFO reported EOF (no writer left) or a read error; false: Stop().
  using EndFn = std::function<void(bool eof)>;

  // Takes a non-blocking descriptor. `on_data` gets each chunk read, `on_end` runs once at the
  // end; both run with the reader's lock held (on the io thread, or in Stop()'s caller), so they
  // must not call back into this reader and must not block for long.
  static Result<std::shared_ptr<FifoReader>> Create(asio::io_context& io, fs::UniqueFd fd,
                                                    DataFn on_data, EndFn on_end);
  ~FifoReader();
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;

  // Starts waiting for data. Once only.
  void Start();
  // Ends reading: with `drain`, first delivers what is readable right now (bounded, never
  // waiting). Then closes the descriptor and runs on_end(false) unless the end already came.
  // Idempotent; from any thread except inside this reader's own callbacks.
  void Stop(bool drain);

  FifoReader(asio::io_context& io, DataFn on_data, EndFn on_end);  // for make_shared

 private:
  enum class ReadResult { kAgain, kEnd };
  ReadResult ReadAvailable(size_t budget);  // mu_ held
  void Arm();                               // mu_ held
  void OnReadable(const asio::error_code& ec);
  void End(bool eof);  // mu_ held

  std::mutex mu_;
  asio::posix::stream_descriptor sd_;
  DataFn on_data_;
  EndFn on_end_;
  bool ended_ = false;
};

// Writes queued buffers to a non-blocking FIFO descriptor in order, waiting for room on the io
// thread when the FIFO is full. Completions are posted to the io_context (never run inline).
class FifoWriter : public std::enable_shared_from_this<FifoWriter> {
 public:
  using DoneFn = std::function<void(Status)>;

  static Result<std::shared_ptr<FifoWriter>> Create(asio::io_context& io, fs::UniqueFd fd);
  ~FifoWriter();
  FifoWriter(const FifoWriter&) = delete;
  FifoWriter& operator=(const FifoWriter&) = delete;

  // Queues `data`; `done` (may be empty) gets Ok() once all of it is written, the write's error,
  // or Canceled if the writer is closed first. After CloseWhenDrained()/Close(): Canceled.
  void Write(std::string data, DoneFn done);
  // Closes the descriptor once everything queued is written (the reader then sees EOF).
  void CloseWhenDrained();
  // Closes now; queued writes complete with Canceled. Idempotent.
  void Close();

  explicit FifoWriter(asio::io_context& io);  // for make_shared

 private:
  struct Pending {
    std::string data;
    size_t off = 0;
    DoneFn done;
  };
  void Pump();  // mu_ held: writes what fits, then waits for room or closes when drained
  void CloseLocked(const Error& why);
  void Post(DoneFn fn, Status st);

  asio::io_context& io_;
  std::mutex mu_;
  asio::posix::stream_descriptor sd_;
  std::deque<Pending> queue_;
  bool waiting_ = false;
  bool close_when_drained_ = false;
  bool closed_ = false;
};

}  // namespace berth::cri::io
