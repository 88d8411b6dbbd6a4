#include "shim/events.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"

namespace berth::shim {
namespace {
constexpr int kMaxAttempts = 5;
constexpr size_t kMaxQueue = 2048;
constexpr std::chrono::milliseconds kCallTimeout(5000);
}  // namespace

Publisher::Publisher(asio::io_context& io, std::string address, std::string ns)
    : io_(io), address_(std::move(address)), ns_(std::move(ns)), retry_timer_(io) {}

Publisher::~Publisher() {
  *alive_ = false;
  if (client_) {
    client_->Close();
  }
}

void Publisher::PublishRaw(const std::string& topic, std::string_view type_url, std::string value) {
  if (address_.empty()) {
    log::L().With("topic", topic).Warn("no TTRPC_ADDRESS: event dropped");
    return;
  }
  if (queue_.size() >= kMaxQueue) {
    log::L().With("topic", topic).Error("event queue full: event dropped");
    return;
  }
  containerd::services::events::ttrpc::v1::ForwardRequest req;
  auto* env = req.mutable_envelope();
  int64_t now = UnixNanos(Now());
  env->mutable_timestamp()->set_seconds(now / 1000000000);
  env->mutable_timestamp()->set_nanos(static_cast<int32_t>(now % 1000000000));
  env->set_namespace_(ns_);
  env->set_topic(topic);
  env->mutable_event()->set_type_url(std::string(type_url));
  env->mutable_event()->set_value(std::move(value));
  queue_.push_back(Item{.payload = req.SerializeAsString(), .topic = topic});
  SendNext();
}

void Publisher::Flush(std::function<void()> fn) {
  if (queue_.empty() && !sending_) {
    fn();
    return;
  }
  flush_waiters_.push_back(std::move(fn));
}

void Publisher::Done() {
  if (queue_.empty() && !sending_) {
    for (auto& fn : std::exchange(flush_waiters_, {})) {
      fn();
    }
  }
}

void Publisher::SendNext() {
  if (sending_ || queue_.empty()) {
    Done();
    return;
  }
  sending_ = true;
  if (!client_ || client_->Closed()) {
    // A unix connect completes at once (or fails): fine on the io thread.
    auto c = ttrpc::Client::Connect(io_, address_, std::chrono::milliseconds(1000));
    if (c) {
      client_ = *c;
    } else {
      client_.reset();
    }
  }
  auto fail = [this](const Error& err) {
    Item& item = queue_.front();
    if (++item.attempts >= kMaxAttempts) {
      log::L().With("topic", item.topic).WithError(err).Error("post event");
      queue_.pop_front();
      sending_ = false;
      SendNext();
      return;
    }
    if (client_) {
      client_->Close();
      client_.reset();
    }
    retry_timer_.expires_after(std::chrono::seconds(item.attempts));
    retry_timer_.async_wait(
        [this, alive = std::weak_ptr<bool>(alive_)](const asio::error_code& ec) {
          if (ec || alive.expired()) {
            return;
          }
          sending_ = false;
          SendNext();
        });
  };
  if (!client_) {
    fail(Unavailable("connect " + address_));
    return;
  }
  ttrpc::Metadata md;
  md.Add(ttrpc::kNamespaceKey, ns_);
  client_->CallAsync("containerd.services.events.ttrpc.v1.Events", "Forward",
                     queue_.front().payload, md, kCallTimeout,
                     [this, fail, alive = std::weak_ptr<bool>(alive_)](Result<std::string> r) {
                       if (alive.expired()) {
                         return;
                       }
                       if (!r) {
                         fail(r.error());
                         return;
                       }
                       queue_.pop_front();
                       sending_ = false;
                       SendNext();
                     });
}

}  // namespace berth::shim
