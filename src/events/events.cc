#include "events/events.h"

#include <fmt/format.h>

#include "common/identifiers.h"

namespace berth::events {

Status ValidateTopic(std::string_view topic) {
  if (topic.empty()) return InvalidArgument("must not be empty");
  if (topic[0] != '/') return InvalidArgument("must start with '/'");
  if (topic.size() == 1) return InvalidArgument("must have at least one component");
  // Every component, empty ones included ("/a//b", "/a/"), must be an identifier.
  std::string_view rest = topic.substr(1);
  for (;;) {
    size_t slash = rest.find('/');
    std::string_view component = rest.substr(0, slash);
    if (auto s = identifiers::Validate(component); !s) {
      return std::move(s).error().Wrap(
          fmt::format("failed validation on component {:?}", component));
    }
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return Ok();
}

Status ValidateEnvelope(const Envelope& envelope) {
  if (auto s = identifiers::Validate(envelope.ns); !s) {
    return std::move(s).error().Wrap("event envelope has invalid namespace");
  }
  if (auto s = ValidateTopic(envelope.topic); !s) {
    return std::move(s).error().Wrap(fmt::format("envelope topic {:?}", envelope.topic));
  }
  if (envelope.timestamp == Timestamp{}) {
    return InvalidArgument("timestamp must be set on forwarded event");
  }
  return Ok();
}

google::protobuf::Any MarshalAny(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  if (message.GetDescriptor() == google::protobuf::Any::descriptor()) {
    any.CopyFrom(message);
    return any;
  }
  // Bare full name: what Go's typeurl writes for a proto message, and the only form it reads.
  any.set_type_url(message.GetDescriptor()->full_name());
  message.SerializeToString(any.mutable_value());
  return any;
}

}  // namespace berth::events
