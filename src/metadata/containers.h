#pragma once
// Containers: the metadata a task is created from, per namespace (containerd's
// metadata/containers.go and containers/containers.go). A container pins its snapshot
// (`snapshotter`/`snapshot_key`) and whatever its containerd.io/gc.ref.* labels name: containers
// are GC roots. Deleting one removes only the record; the client removes the snapshot.
//
// Storage (bolt's layout): v1/<ns>/containers/<id>/{createdat, updatedat, spec, image,
// snapshotter, snapshotKey, runtime/{name, options}, extensions/<name>, labels/<k>}; `spec`,
// `runtime/options` and `extensions/<name>` hold a protobuf-encoded google.protobuf.Any, as
// containerd writes them.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/context.h"
#include "common/labels.h"
#include "common/timeutil.h"
#include "metadata/db.h"

namespace berth::metadata {

// A google.protobuf.Any kept opaque below the service edge: the type URL (bare, e.g.
// "types.containerd.io/opencontainers/runtime-spec/1/Spec") and the encoded message.
struct Any {
  std::string type_url;
  std::string value;

  bool operator==(const Any&) const = default;
};

// Encodes `any` as the wire form of google.protobuf.Any (type_url = 1, value = 2).
std::string EncodeAny(const Any& any);
// Decodes the wire form; InvalidArgument if it is not a well-formed Any.
Result<Any> DecodeAny(std::string_view encoded);

struct Container {
  std::string id;  // identifier; required, immutable
  Labels labels;
  std::string image;  // optional, mutable, never parsed
  struct Runtime {
    std::string name;            // required, immutable (e.g. "io.containerd.runc.v2")
    std::optional<Any> options;  // e.g. containerd.runc.v1.Options
    bool operator==(const Runtime&) const = default;
  } runtime;
  std::optional<Any> spec;  // required (OCI runtime spec as JSON), mutable
  std::string snapshotter;  // required when snapshot_key is set; immutable
  std::string snapshot_key;
  Timestamp created_at{};  // set by the store
  Timestamp updated_at{};
  std::map<std::string, Any> extensions;  // keys non-empty

  bool operator==(const Container&) const = default;
};

class ContainerStore {
 public:
  explicit ContainerStore(Db& db) : db_(db) {}

  // NotFound "container %q in namespace %q".
  Result<Container> Get(const Context& ctx, const std::string& id);
  // Filters: id, image, runtime.name, labels.* (empty values count as absent).
  Result<std::vector<Container>> List(const Context& ctx, const std::vector<std::string>& filters);
  // Validates (InvalidArgument "create container failed validation: ..."): id an identifier,
  // labels, runtime.name set, spec set, snapshotter set if snapshot_key is, extension keys
  // non-empty. AlreadyExists "container %q". Creates the namespace if needed; sets both
  // timestamps (UTC now). Returns the stored container.
  Result<Container> Create(const Context& ctx, Container container);
  // Field paths: labels, labels.<k>, spec, extensions, extensions.<k>, image, snapshotkey; other
  // paths: InvalidArgument "cannot update %q field on %q". No paths = replace all of those, and
  // then a changed snapshotter or runtime.name is InvalidArgument "container.Snapshotter field
  // is immutable" / "container.Runtime.Name field is immutable". A label set to "" is deleted.
  // InvalidArgument for an empty id; NotFound when absent. Keeps created_at, sets updated_at.
  // Returns the stored container.
  Result<Container> Update(const Context& ctx, const Container& container,
                           const std::vector<std::string>& fieldpaths);
  // Removes the record (not the snapshot); NotFound when absent. Marks the GC dirty.
  Status Delete(const Context& ctx, const std::string& id);

 private:
  Db& db_;
};

}  // namespace berth::metadata
