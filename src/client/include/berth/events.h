#pragma once
// Subscribing to berthd's events (containerd's events service): one envelope per event, as
// published, in order.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "berth/errors.h"

namespace berth {

struct Envelope {
  std::chrono::system_clock::time_point timestamp{};  // zero when unset (or Go's zero time)
  std::string ns;                                     // namespace the event happened in
  std::string topic;                                  // "/tasks/exit", "/containers/create", ...
  std::string type_url;                               // "containerd.events.TaskExit"
  std::string data;                                   // the event message, protobuf bytes
  // The event as protobuf JSON ({"containerId": ...}); empty when its type is unknown here.
  std::string json;
};

// A live subscription. Next() blocks until the next event; Close() (from any thread) ends it:
// a blocked Next() then returns Canceled. The stream is closed when destroyed.
class EventStream {
 public:
  struct Impl;
  explicit EventStream(std::unique_ptr<Impl> impl);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // The next envelope; Canceled after Close(), the server's error when the stream broke, and
  // Unknown "EOF" when the daemon ended it (as Go's io.EOF).
  Result<Envelope> Next();
  void Close();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth
