#pragma once
// How a service publishes its events: through the exchange, if one is loaded. A failed publish
// is logged, never turned into a failed request (the change already happened), as containerd.
#include <google/protobuf/message.h>

#include <github.com/containerd/containerd/api/events/container.pb.h>
#include <github.com/containerd/containerd/api/events/content.pb.h>
#include <github.com/containerd/containerd/api/events/image.pb.h>
#include <github.com/containerd/containerd/api/events/namespace.pb.h>
#include <github.com/containerd/containerd/api/events/snapshot.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.pb.h>

#include <google/protobuf/timestamp.pb.h>

#include <string_view>

#include "common/context.h"
#include "common/errdefs.h"
#include "common/timeutil.h"
#include "events/exchange.h"
#include "plugin/plugin.h"

namespace berth::services {

class EventsHook {
 public:
  EventsHook() = default;
  explicit EventsHook(events::Publisher* publisher) : publisher_(publisher) {}
  // The exchange among the plugins initialised so far (none: events are dropped).
  static EventsHook From(const plugin::InitContext& ic);

  void Publish(const Context& ctx, std::string_view topic,
               const google::protobuf::Message& event) const;

 private:
  events::Publisher* publisher_ = nullptr;
};

// The time of a forwarded envelope: unset (absent, or Go's zero time) -> Timestamp{}, which the
// exchange rejects; out of Timestamp's range -> InvalidArgument.
Result<Timestamp> ForwardedTime(const google::protobuf::Timestamp* ts);

// Forward(envelope) of both Events services (gRPC containerd.services.events.v1 and the ttrpc
// one shims use): the envelope is validated and handed to the exchange with its own time.
template <class ForwardRequest>
Status ForwardEnvelope(events::Exchange& exchange, const ForwardRequest& req) {
  if (!req.has_envelope()) return InvalidArgument("envelope must be set");
  const auto& in = req.envelope();
  if (!in.has_event()) return InvalidArgument("event must be set on forwarded envelope");
  BERTH_ASSIGN_OR_RETURN(Timestamp timestamp,
                         ForwardedTime(in.has_timestamp() ? &in.timestamp() : nullptr));
  return exchange.Forward(
      {.timestamp = timestamp, .ns = in.namespace_(), .topic = in.topic(), .event = in.event()});
}

}  // namespace berth::services
