#pragma once
// The event exchange: publish/forward/subscribe with topics and filters (containerd 1.6
// events/exchange/exchange.go), plugin io.containerd.event.v1 "exchange".
//
// Delivery: every subscription receives the envelopes matching its filters in one total order,
// the same for all subscribers (fan-out is serialized), and never blocks a publisher.
//
// Slow subscribers: each subscription has a bounded queue (ExchangeOptions::max_queued). A
// subscriber that lets it fill up is dropped: the envelope that does not fit and everything after
// it are not queued, and once the consumer has taken what was queued, the subscription ends with
// ResourceExhausted. (containerd's queues are unbounded: one stuck client grows the daemon's
// memory without limit; here it loses its stream instead and can resubscribe.)
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "events/events.h"

namespace berth::events {

namespace detail {
struct Hub;
struct Queue;
}  // namespace detail

struct ExchangeOptions {
  // Envelopes one subscription may hold before it is dropped as too slow.
  size_t max_queued = 4096;
};

// One subscriber's view of the exchange. Owned by the subscriber; destroying it unsubscribes.
// Next/TryNext may be called from one consumer thread while publishers run on others.
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // The next envelope, in publish order. Blocks until one is queued or the subscription ends;
  // after the end, what was already queued is still returned, then the end as an error:
  // Canceled after Close() or Exchange::Shutdown(), ResourceExhausted when dropped as too slow.
  Result<Envelope> Next();
  // As Next(), waiting at most `timeout`: nullopt if nothing came in time.
  Result<std::optional<Envelope>> Next(std::chrono::milliseconds timeout);
  // Never blocks: nullopt when nothing is queued right now.
  Result<std::optional<Envelope>> TryNext();

  // Unsubscribes: queued envelopes are discarded and nothing more arrives. When it returns, the
  // on_ready callback is not running (other than a call up the caller's own stack: Close() may
  // be reached from inside on_ready) and will not run again. Idempotent.
  void Close();

 private:
  friend class Exchange;
  Subscription(std::weak_ptr<detail::Hub> hub, std::shared_ptr<detail::Queue> queue)
      : hub_(std::move(hub)), queue_(std::move(queue)) {}

  std::weak_ptr<detail::Hub> hub_;
  std::shared_ptr<detail::Queue> queue_;
};

class Exchange final : public Publisher {
 public:
  explicit Exchange(ExchangeOptions options = {});
  // Shutdown().
  ~Exchange() override;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // See Publisher. Stamps Now() (UTC) and the namespace of ctx.
  Status Publish(const Context& ctx, std::string_view topic,
                 const google::protobuf::Message& event) override;

  // Distributes an envelope made elsewhere (a shim, a client on behalf of another namespace),
  // keeping its timestamp. ValidateEnvelope()'s errors.
  Status Forward(Envelope envelope);

  // Subscribes to the envelopes matching any of `filters` (containerd's filter syntax over
  // `topic`, `namespace`, `event.<field>`: see events/fields.h). No filters: everything, from
  // every namespace. InvalidArgument "failed parsing subscription filters: ..." for a bad filter;
  // Unavailable after Shutdown().
  //
  // `on_ready` (optional) is called whenever the subscription gets something for Next(): an
  // envelope, or its end. It runs on the publishing thread with no exchange lock held, possibly
  // concurrently with itself and with the consumer; it must be short and must not block.
  // Close() waits for running calls (on other threads) to return.
  Result<std::unique_ptr<Subscription>> Subscribe(const std::vector<std::string>& filters,
                                                  std::function<void()> on_ready = {});

  // Ends every subscription (Canceled) and refuses new ones. Later publishes are dropped.
  // Idempotent.
  void Shutdown();

  // Open subscriptions.
  size_t Subscribers() const;

 private:
  void Deliver(std::shared_ptr<const Envelope> envelope);

  ExchangeOptions options_;
  std::shared_ptr<detail::Hub> hub_;
};

}  // namespace berth::events
