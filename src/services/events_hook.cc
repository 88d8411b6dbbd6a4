#include "services/events_hook.h"

#include "common/log.h"
#include "events/exchange.h"

namespace berth::services {

EventsHook EventsHook::From(const plugin::InitContext& ic) {
  return EventsHook(ic.Plugins().Get<events::Exchange>(plugin::kEvent));
}

void EventsHook::Publish(const Context& ctx, std::string_view topic,
                         const google::protobuf::Message& event) const {
  if (publisher_ == nullptr) return;
  if (auto s = publisher_->Publish(ctx, topic, event); !s) {
    log::L().WithError(s.error()).With("topic", topic).Warn("failed to publish event");
  }
}

}  // namespace berth::services
