#pragma once
// Decoding an event's Any: the type URL names a message of the generated descriptor pool, looked
// up by exact name as Go's typeurl does ("containerd.events.TaskExit"; a "type.googleapis.com/"
// prefix does not resolve).
//
// Header-only so that the CLI (which links the generated API but not the exchange) shares it.
// A generated file's descriptors are in the pool only if its object file is linked, and a static
// library drops objects nobody references: LinkEventTypes() references every file of
// api/events, so each event type containerd publishes resolves in any binary that decodes.
#include <github.com/containerd/containerd/api/events/container.pb.h>
#include <github.com/containerd/containerd/api/events/content.pb.h>
#include <github.com/containerd/containerd/api/events/image.pb.h>
#include <github.com/containerd/containerd/api/events/namespace.pb.h>
#include <github.com/containerd/containerd/api/events/snapshot.pb.h>
#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <memory>
#include <string>

namespace berth::events {

// Makes sure the descriptors of api/events/*.proto are linked in and registered.
inline void LinkEventTypes() {
  static const google::protobuf::Descriptor* const kLinked[] = {
      containerd::events::ContainerCreate::descriptor(),
      containerd::events::ContentDelete::descriptor(),
      containerd::services::images::v1::ImageCreate::descriptor(),
      containerd::events::NamespaceCreate::descriptor(),
      containerd::events::SnapshotPrepare::descriptor(),
      containerd::events::TaskCreate::descriptor(),
  };
  (void)kLinked;
}

// The generated message type named by a bare type URL, or null.
inline const google::protobuf::Descriptor* FindType(const std::string& type_url) {
  LinkEventTypes();
  return google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type_url);
}

// The decoded message of `any`, or null when its type is unknown or its bytes do not parse.
inline std::unique_ptr<google::protobuf::Message> UnmarshalAny(const google::protobuf::Any& any) {
  const google::protobuf::Descriptor* type = FindType(any.type_url());
  if (type == nullptr) return nullptr;
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  if (prototype == nullptr) return nullptr;
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  if (!message->ParseFromString(any.value())) return nullptr;
  return message;
}

}  // namespace berth::events
