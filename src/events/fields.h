#pragma once
// Filtering envelopes (containerd's Envelope.Field and the Field() methods its fieldpath protoc
// plugin generates for every event type):
//
//   topic, namespace      the envelope's; absent when ""
//   event.<path>          resolved in the decoded event, by protobuf reflection:
//     string field        its value; absent when ""          (event.name, event.container_id)
//     bool field          "true"/"false", always present     (event.io.terminal)
//     labels map          event.labels.<key>: the rest of the path joined by "." is the key
//     message field       recurses (event.runtime.name); absent when unset
//     Any field           decoded by type URL, then recurses (event.runtime.options.<...>)
//   anything else is absent: numbers, timestamps, repeated fields, other maps, timestamp.
// An event resolves fields only if its proto enables containerd's fieldpath plugin
// (option fieldpath_all or fieldpath), as in Go where other types have no Field() method; a
// string field yields its value even if the path goes on (event.name.x = event.name), as there.
#include <google/protobuf/message.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/filters.h"
#include "events/events.h"

namespace berth::events {

// Field lookup over one envelope. The event is decoded at most once, on the first event.* lookup,
// so one EnvelopeFields can serve every subscriber's filter. Not thread-safe; must not outlive
// the envelope.
class EnvelopeFields {
 public:
  explicit EnvelopeFields(const Envelope& envelope) : envelope_(envelope) {}

  std::optional<std::string> Field(const std::vector<std::string>& fieldpath);
  // An adaptor for filters::Filter::Match, valid while this object lives.
  filters::Adaptor Adaptor() {
    return [this](const std::vector<std::string>& path) { return Field(path); };
  }

 private:
  const Envelope& envelope_;
  bool decoded_ = false;
  std::unique_ptr<google::protobuf::Message> event_;
};

// The field of `message` at `fieldpath` (relative to the message), by the rules above.
std::optional<std::string> MessageField(const google::protobuf::Message& message,
                                        const std::vector<std::string>& fieldpath, size_t from = 0);

}  // namespace berth::events
