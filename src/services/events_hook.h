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

#include <string_view>

#include "common/context.h"
#include "plugin/plugin.h"

namespace berth::events {
class Publisher;
}

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

}  // namespace berth::services
