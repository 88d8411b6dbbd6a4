#include "events/exchange.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "common/filters.h"
#include "common/log.h"
#include "events/fields.h"

namespace berth::events {
namespace detail {

// One subscription's queue: filled by the exchange, drained by the subscriber.
struct Queue {
  Queue(filters::Filter f, std::function<void()> ready, size_t max)
      : filter(std::move(f)), on_ready(std::move(ready)), max_queued(max) {}

  // Calls on_ready unless the owner closed the subscription; Close() waits for running calls.
  void Notify() {
    if (!on_ready) return;
    std::thread::id self = std::this_thread::get_id();
    {
      std::lock_guard lock(mu);
      if (closed) return;
      notifying.push_back(self);
    }
    on_ready();
    {
      std::lock_guard lock(mu);
      notifying.erase(std::find(notifying.begin(), notifying.end(), self));
    }
    cv.notify_all();
  }

  // No on_ready call runs, except the calling thread's own (a Close() from inside on_ready, or
  // from what it triggers, must not wait for itself). Holds mu.
  bool QuiescentLocked() const {
    std::thread::id self = std::this_thread::get_id();
    return std::all_of(notifying.begin(), notifying.end(),
                       [&](std::thread::id id) { return id == self; });
  }

  const filters::Filter filter;
  const std::function<void()> on_ready;
  const size_t max_queued;

  std::mutex mu;
  std::condition_variable cv;  // items, end, closed, notifying changed
  std::deque<std::shared_ptr<const Envelope>> items;
  std::optional<Error> end;  // set once by the exchange: delivered after the queued items
  bool closed = false;       // the owner unsubscribed
  std::vector<std::thread::id> notifying;  // threads inside on_ready
};

// The exchange's subscriber list, shared with subscriptions so they can leave it (or find it
// gone: an Exchange may die before its subscriptions).
struct Hub {
  std::mutex mu;
  std::vector<std::shared_ptr<Queue>> queues;
  bool shut_down = false;
};

}  // namespace detail

namespace {

Error Canceled(std::string what) { return Error(Errc::kCanceled, std::move(what)); }

// The head of the queue, or the end once the queue is drained; nullopt if neither. Holds q.mu.
Result<std::optional<Envelope>> TakeLocked(detail::Queue& q) {
  if (q.closed) return Canceled("subscription closed");
  if (!q.items.empty()) {
    Envelope envelope = *q.items.front();
    q.items.pop_front();
    return std::optional<Envelope>(std::move(envelope));
  }
  if (q.end) return *q.end;
  return std::optional<Envelope>();
}

}  // namespace

Subscription::~Subscription() { Close(); }

Result<Envelope> Subscription::Next() {
  std::unique_lock lock(queue_->mu);
  queue_->cv.wait(lock, [&] { return queue_->closed || !queue_->items.empty() || queue_->end; });
  BERTH_ASSIGN_OR_RETURN(std::optional<Envelope> envelope, TakeLocked(*queue_));
  return std::move(*envelope);
}

Result<std::optional<Envelope>> Subscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(queue_->mu);
  queue_->cv.wait_for(lock, timeout,
                      [&] { return queue_->closed || !queue_->items.empty() || queue_->end; });
  return TakeLocked(*queue_);
}

Result<std::optional<Envelope>> Subscription::TryNext() {
  std::lock_guard lock(queue_->mu);
  return TakeLocked(*queue_);
}

void Subscription::Close() {
  {
    std::unique_lock lock(queue_->mu);
    queue_->closed = true;
    queue_->items.clear();
    queue_->cv.notify_all();
    queue_->cv.wait(lock, [&] { return queue_->QuiescentLocked(); });
  }
  if (auto hub = hub_.lock()) {
    std::lock_guard lock(hub->mu);
    std::erase(hub->queues, queue_);
  }
}

Exchange::Exchange(ExchangeOptions options)
    : options_(options), hub_(std::make_shared<detail::Hub>()) {}

Exchange::~Exchange() { Shutdown(); }

Status Exchange::Publish(const Context& ctx, std::string_view topic,
                         const google::protobuf::Message& event) {
  if (ctx.ns.empty()) {
    return FailedPrecondition("namespace is required").Wrap("failed publishing event");
  }
  if (auto s = ValidateTopic(topic); !s) {
    return std::move(s).error().Wrap(fmt::format("envelope topic {:?}", topic));
  }
  auto envelope = std::make_shared<Envelope>(
      Envelope{.timestamp = Now(), .ns = ctx.ns, .topic = std::string(topic)});
  envelope->event = MarshalAny(event);
  log::L()
      .With("topic", envelope->topic)
      .With("ns", envelope->ns)
      .With("type", envelope->event.type_url())
      .Debug("event published");
  Deliver(std::move(envelope));
  return Ok();
}

Status Exchange::Forward(Envelope envelope) {
  if (auto s = ValidateEnvelope(envelope); !s) {
    log::L()
        .With("topic", envelope.topic)
        .With("ns", envelope.ns)
        .With("type", envelope.event.type_url())
        .WithError(s.error())
        .Error("error forwarding event");
    return s;
  }
  log::L()
      .With("topic", envelope.topic)
      .With("ns", envelope.ns)
      .With("type", envelope.event.type_url())
      .Debug("event forwarded");
  Deliver(std::make_shared<const Envelope>(std::move(envelope)));
  return Ok();
}

void Exchange::Deliver(std::shared_ptr<const Envelope> envelope) {
  EnvelopeFields fields(*envelope);  // decodes the event once, for every filter that asks
  std::vector<std::shared_ptr<detail::Queue>> ready;
  size_t dropped = 0;
  {
    // One fan-out at a time: all subscribers see the same order.
    std::lock_guard lock(hub_->mu);
    if (hub_->shut_down) return;
    for (const auto& q : hub_->queues) {
      if (!q->filter.MatchesAll() && !q->filter.Match(fields.Adaptor())) continue;
      std::lock_guard qlock(q->mu);
      if (q->closed || q->end) continue;
      if (q->items.size() >= q->max_queued) {
        q->end = Error(Errc::kResourceExhausted,
                       fmt::format("event subscriber too slow: {} events queued, dropped from the "
                                   "exchange (resubscribe)",
                                   q->items.size()));
        ++dropped;
      } else {
        q->items.push_back(envelope);
      }
      q->cv.notify_all();
      ready.push_back(q);
    }
    if (dropped > 0) {
      std::erase_if(hub_->queues, [](const std::shared_ptr<detail::Queue>& q) {
        std::lock_guard qlock(q->mu);
        return q->end.has_value();
      });
    }
  }
  if (dropped > 0) {
    log::L().With("count", static_cast<long long>(dropped)).Warn("dropped slow event subscribers");
  }
  for (const auto& q : ready) q->Notify();
}

Result<std::unique_ptr<Subscription>> Exchange::Subscribe(const std::vector<std::string>& filters,
                                                          std::function<void()> on_ready) {
  auto filter = filters::ParseAll(filters);
  if (!filter) {
    return std::move(filter).error().Wrap("failed parsing subscription filters");
  }
  auto queue =
      std::make_shared<detail::Queue>(std::move(*filter), std::move(on_ready), options_.max_queued);
  {
    std::lock_guard lock(hub_->mu);
    if (hub_->shut_down) return Unavailable("event exchange is shut down");
    hub_->queues.push_back(queue);
  }
  return std::unique_ptr<Subscription>(new Subscription(hub_, std::move(queue)));
}

void Exchange::Shutdown() {
  std::vector<std::shared_ptr<detail::Queue>> queues;
  {
    std::lock_guard lock(hub_->mu);
    if (hub_->shut_down) return;
    hub_->shut_down = true;
    queues.swap(hub_->queues);
    for (const auto& q : queues) {
      std::lock_guard qlock(q->mu);
      if (!q->end) q->end = Canceled("event exchange shut down");
      q->cv.notify_all();
    }
  }
  for (const auto& q : queues) q->Notify();
}

size_t Exchange::Subscribers() const {
  std::lock_guard lock(hub_->mu);
  return hub_->queues.size();
}

}  // namespace berth::events
