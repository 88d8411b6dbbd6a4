#include "events/fields.h"

#include <github.com/containerd/containerd/protobuf/plugin/fieldpath.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/timestamp.pb.h>

#include "events/types.h"

namespace berth::events {
namespace {

namespace pb = google::protobuf;

// The Go type has a Field() method: containerd's fieldpath plugin ran on its file or message.
bool HasFieldMethod(const pb::Descriptor& type) {
  return type.file()->options().GetExtension(containerd::plugin::fieldpath_all) ||
         type.options().GetExtension(containerd::plugin::fieldpath);
}

std::string Join(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    if (i > from) out += '.';
    out += parts[i];
  }
  return out;
}

// The fieldpath plugin's isLabelsField: a map named "labels" (its entry type is LabelsEntry).
bool IsLabelsField(const pb::FieldDescriptor& field) {
  return field.is_map() && field.name() == "labels" &&
         field.message_type()->map_key()->type() == pb::FieldDescriptor::TYPE_STRING &&
         field.message_type()->map_value()->type() == pb::FieldDescriptor::TYPE_STRING;
}

std::optional<std::string> LabelsField(const pb::Message& message, const pb::FieldDescriptor& field,
                                       const std::string& key) {
  const pb::Reflection* reflection = message.GetReflection();
  int size = reflection->FieldSize(message, &field);
  const pb::FieldDescriptor* key_field = field.message_type()->map_key();
  const pb::FieldDescriptor* value_field = field.message_type()->map_value();
  for (int i = 0; i < size; ++i) {
    const pb::Message& entry = reflection->GetRepeatedMessage(message, &field, i);
    const pb::Reflection* er = entry.GetReflection();
    if (er->GetString(entry, key_field) == key) return er->GetString(entry, value_field);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> MessageField(const pb::Message& message,
                                        const std::vector<std::string>& fieldpath, size_t from) {
  if (from >= fieldpath.size()) return std::nullopt;
  const pb::Descriptor& type = *message.GetDescriptor();
  if (!HasFieldMethod(type)) return std::nullopt;
  const pb::FieldDescriptor* field = type.FindFieldByName(fieldpath[from]);
  if (field == nullptr) return std::nullopt;
  const pb::Reflection* reflection = message.GetReflection();
  if (IsLabelsField(*field)) {
    if (reflection->FieldSize(message, field) == 0) return std::nullopt;
    return LabelsField(message, *field, Join(fieldpath, from + 1));
  }
  if (field->is_repeated()) return std::nullopt;
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      if (field->type() == pb::FieldDescriptor::TYPE_BYTES) return std::nullopt;
      std::string value = reflection->GetString(message, field);
      if (value.empty()) return std::nullopt;
      return value;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return reflection->GetBool(message, field) ? "true" : "false";
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const pb::Descriptor* sub = field->message_type();
      if (sub == pb::Timestamp::descriptor()) return std::nullopt;
      if (!reflection->HasField(message, field)) return std::nullopt;
      const pb::Message& value = reflection->GetMessage(message, field);
      if (sub == pb::Any::descriptor()) {
        pb::Any any;
        any.CopyFrom(value);
        auto decoded = UnmarshalAny(any);
        if (decoded == nullptr) return std::nullopt;
        return MessageField(*decoded, fieldpath, from + 1);
      }
      return MessageField(value, fieldpath, from + 1);
    }
    default:
      return std::nullopt;  // numbers and enums: "unhandled" in the generated Field()
  }
}

std::optional<std::string> EnvelopeFields::Field(const std::vector<std::string>& fieldpath) {
  if (fieldpath.empty()) return std::nullopt;
  const std::string& first = fieldpath[0];
  if (first == "namespace") {
    if (envelope_.ns.empty()) return std::nullopt;
    return envelope_.ns;
  }
  if (first == "topic") {
    if (envelope_.topic.empty()) return std::nullopt;
    return envelope_.topic;
  }
  if (first == "event") {
    if (!decoded_) {
      decoded_ = true;
      event_ = UnmarshalAny(envelope_.event);
    }
    if (event_ == nullptr) return std::nullopt;
    return MessageField(*event_, fieldpath, 1);
  }
  return std::nullopt;
}

}  // namespace berth::events
