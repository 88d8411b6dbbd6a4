#include "services/events_hook.h"

#include <limits>

#include "common/log.h"
#include "common/proto_time.h"
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

namespace {
// Go's zero time.Time (0001-01-01T00:00:00Z), which a Go client sends for an unset timestamp.
constexpr int64_t kGoZeroSeconds = -62135596800;
}  // namespace

Result<Timestamp> ForwardedTime(const google::protobuf::Timestamp* ts) {
  if (ts == nullptr) return Timestamp{};
  if (ts->seconds() == kGoZeroSeconds && ts->nanos() == 0) return Timestamp{};
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (ts->seconds() > kMaxSeconds || ts->seconds() < -kMaxSeconds || ts->nanos() < 0 ||
      ts->nanos() > 999'999'999) {
    return InvalidArgument("envelope timestamp out of range (years 1678 to 2261)");
  }
  return FromProtoTime(*ts);
}

}  // namespace berth::services
