#pragma once
// Internals of the stream client (stream_client*.cc), not for tests: socket I/O with deadlines,
// the upgrade handshake, and Socket, a descriptor with its reader thread.
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/errdefs.h"
#include "common/fs.h"
#include "stream_client.h"

namespace berth::testing::stream {
namespace io {

using Clock = std::chrono::steady_clock;

Error Deadline(std::string what);
// Time left until `deadline`, at least 0.
Millis Left(Clock::time_point deadline);
bool EqualFold(std::string_view a, std::string_view b);

Status SendAllUntil(int fd, std::string_view data, Clock::time_point deadline);
// Some bytes from `fd` appended to `buf`: how many, 0 at EOF. DeadlineExceeded when none came,
// Unavailable when the connection was reset.
Result<size_t> RecvSome(int fd, std::string& buf, Clock::time_point deadline);

struct Dialed {
  fs::UniqueFd fd;
  HttpReply reply;
  std::string rest;  // bytes after the 101's head: the upgraded protocol's first
};
// Connects, sends `request` and reads the response head. Anything but 101 is RefusalError
// (with `*refused` set when given, body included).
Result<Dialed> DialUpgrade(const Url& url, std::string_view request, Clock::time_point deadline,
                           HttpReply* refused);

}  // namespace io

// One upgraded connection's descriptor and its reader thread.
class Socket {
 public:
  using OnBytes = std::function<void(std::string_view)>;
  using OnClosed = std::function<void(std::optional<Error>)>;

  explicit Socket(fs::UniqueFd fd);
  ~Socket();  // Stop()
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Feeds `initial`, then every chunk read, to `on_bytes` (on the reader thread); then calls
  // `on_closed` once: nullopt when the server closed the connection, the error when it broke,
  // Canceled when Stop() or Abort() ended the reading.
  void Start(std::string initial, OnBytes on_bytes, OnClosed on_closed);
  // Writes all of `data`. Callers serialize their writes.
  Status Send(std::string_view data, Millis timeout = kDefaultTimeout);
  void ShutdownWrite();
  // Stops the reader; the descriptor stays open until destruction. Owners call it first in
  // their destructor, so the callbacks never see a half-destroyed owner.
  void Stop();
  // Resets the connection (RST, not FIN) after stopping the reader.
  void Abort();
  // Stops/resumes reading the descriptor (a client that falls behind: the kernel's buffers
  // fill and the server sees it).
  void SetPaused(bool paused);

 private:
  std::optional<Error> Loop(const OnBytes& on_bytes);
  void Wake();

  fs::UniqueFd fd_;
  fs::UniqueFd wake_;  // eventfd: wakes the reader for Stop() and SetPaused()
  std::atomic<bool> aborted_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  std::thread thread_;
};

}  // namespace berth::testing::stream
