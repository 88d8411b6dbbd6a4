#pragma once
// Events: what is published, and by whom (containerd 1.6 events/events.go).
//
// An event is any protobuf message; it travels packed in a google.protobuf.Any whose type URL is
// the message's bare full name ("containerd.events.NamespaceCreate", no "type.googleapis.com/"
// prefix): Go clients resolve an Any by its exact URL, so a prefixed one would be undecodable.
#include <google/protobuf/any.pb.h>
#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "common/context.h"
#include "common/errdefs.h"
#include "common/timeutil.h"

namespace berth::events {

// One published event with where and when it happened.
struct Envelope {
  Timestamp timestamp;  // set by the publisher (UTC); Timestamp{} = unset
  std::string ns;       // namespace the event happened in
  std::string topic;    // "/namespaces/create", ...
  google::protobuf::Any event;
};

// Posts events. The publisher is the origin of the event: it stamps the time and takes the
// namespace from the context.
class Publisher {
 public:
  virtual ~Publisher() = default;
  // Packs `event` (an Any is published as is) into an envelope stamped now, in ctx.ns.
  // FailedPrecondition "failed publishing event: namespace is required" without a namespace;
  // InvalidArgument `envelope topic "<topic>": ...` for a topic ValidateTopic() rejects.
  virtual Status Publish(const Context& ctx, std::string_view topic,
                         const google::protobuf::Message& event) = 0;
};

// containerd's topic rule: "/" followed by one or more identifier components separated by "/".
// InvalidArgument: "must not be empty", "must start with '/'", "must have at least one
// component", or `failed validation on component "<c>": <identifier error>`.
Status ValidateTopic(std::string_view topic);

// What Forward() checks: valid namespace identifier, valid topic, timestamp set. InvalidArgument
// with containerd's text ("event envelope has invalid namespace: ...", `envelope topic "t": ...`,
// "timestamp must be set on forwarded event").
Status ValidateEnvelope(const Envelope& envelope);

// `message` in an Any with its bare type URL; an Any is returned unchanged.
google::protobuf::Any MarshalAny(const google::protobuf::Message& message);

}  // namespace berth::events
