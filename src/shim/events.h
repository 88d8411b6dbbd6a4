#pragma once
// Task events from the shim to the daemon, as containerd 1.6's shim publisher sends them: ttrpc
// `containerd.services.events.ttrpc.v1.Events/Forward` on $TTRPC_ADDRESS with an Envelope
// {timestamp, namespace, topic, event Any} and the namespace in `containerd-namespace-ttrpc`
// metadata. Events go out one at a time in order; a failed send is retried (up to 5 attempts,
// n-second backoff, reconnecting) without ever blocking the io thread.
#include <google/protobuf/message_lite.h>

#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "ttrpc/ttrpc.h"

namespace berth::shim {

class Publisher {
 public:
  // `address` empty = events are logged and dropped.
  Publisher(asio::io_context& io, std::string address, std::string ns);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Queues `event` for `topic` ("/tasks/exit") with its type URL, the full proto name
  // ("containerd.events.TaskExit"). Spelled out rather than read from the descriptor: building
  // descriptors would cost every shim hundreds of kilobytes.
  void Publish(const std::string& topic, std::string_view type_url,
               const google::protobuf::MessageLite& event) {
    PublishRaw(topic, type_url, event.SerializeAsString());
  }
  void PublishRaw(const std::string& topic, std::string_view type_url, std::string value);
  // Runs `fn` once everything queued so far is sent or given up on.
  void Flush(std::function<void()> fn);

 private:
  struct Item {
    std::string payload;  // serialized ForwardRequest
    std::string topic;
    int attempts = 0;
  };
  void SendNext();
  void Done();

  asio::io_context& io_;
  std::string address_;
  std::string ns_;
  std::shared_ptr<ttrpc::Client> client_;
  std::deque<Item> queue_;
  bool sending_ = false;
  asio::steady_timer retry_timer_;
  std::vector<std::function<void()>> flush_waiters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace berth::shim
