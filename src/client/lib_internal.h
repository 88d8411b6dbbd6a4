#pragma once
// What the public client library (include/berth) shares between its implementation files: the
// state behind a Client, and conversions between the API's protobuf types and the public ones.
#include <github.com/containerd/containerd/api/services/containers/v1/containers.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "berth/client.h"
#include "client/process_io.h"
#include "client/session.h"
#include "common/proto_time.h"
#include "images/image.h"

namespace berth::detail {

struct ClientState {
  client::Session session;
};

// A public Client over a session the caller already holds (the CLI's connection).
inline Client ClientOverSession(client::Session session) {
  return Client(std::make_shared<const ClientState>(ClientState{std::move(session)}));
}

// The public view of a container record (containers.Container).
ContainerInfo ContainerFromProto(const containerd::services::containers::v1::Container& c);

inline std::shared_ptr<const ClientState> WithSession(client::Session session) {
  return std::make_shared<const ClientState>(ClientState{std::move(session)});
}

// One process of a task (or the task itself: exec_id empty) and the IO it owns.
struct ProcessState {
  std::shared_ptr<const ClientState> client;
  std::string container_id;
  std::string exec_id;
  uint32_t pid = 0;
  std::mutex mu;
  std::unique_ptr<cio::IO> io;
};

// Times outside what int64 nanoseconds hold (years before 1678 or after 2262) come back as the
// zero time_point: among them Go's zero time (0001-01-01, seconds -62135596800), which is how the
// daemon says "not set" (e.g. exited_at of a process that has not exited).
inline std::chrono::system_clock::time_point FromProto(const google::protobuf::Timestamp& t) {
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(FromProtoTime(t));
}

inline Descriptor ToDescriptor(const images::OciDescriptor& d) {
  return {d.media_type, d.digest, d.size};
}
inline images::OciDescriptor ToOci(const Descriptor& d) {
  return {d.media_type, d.digest, d.size, std::nullopt};
}

// "os/arch[/variant]" -> a normalized platform; "" = the host's. InvalidArgument when malformed.
Result<images::Platform> ParsePlatformText(const std::string& text);
images::PlatformMatcher MatcherFor(const std::string& platform);

// A context for a call that may last as long as a process (no deadline): namespace and lease.
std::unique_ptr<grpc::ClientContext> LongContext(const client::Session& session);

}  // namespace berth::detail
