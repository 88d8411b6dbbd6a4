#include "metadata/containers.h"

#include <fmt/format.h>

#include "common/filters.h"
#include "common/identifiers.h"
#include "metadata/namespaces.h"

namespace berth::metadata {
namespace {

Key ContainerKey(const std::string& ns, const std::string& id,
                 std::initializer_list<std::string> rest = {}) {
  Key k = NsKey(ns, {kBucketContainers, id});
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

Result<std::optional<Any>> ReadAny(const Txn& txn, const Key& key) {
  BERTH_ASSIGN_OR_RETURN(auto raw, txn.Get(key));
  if (!raw) return std::optional<Any>();
  BERTH_ASSIGN_OR_RETURN(Any any, DecodeAny(*raw));
  return std::optional<Any>(std::move(any));
}

Result<std::optional<Container>> ReadContainer(const Txn& txn, const std::string& ns,
                                               const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(ContainerKey(ns, id)));
  if (!exists) return std::optional<Container>();
  Container c{.id = id};
  BERTH_ASSIGN_OR_RETURN(c.labels, ReadLabels(txn, ContainerKey(ns, id, {"labels"})));
  BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(ContainerKey(ns, id, {"createdat"})));
  BERTH_ASSIGN_OR_RETURN(auto updated, txn.Get(ContainerKey(ns, id, {"updatedat"})));
  c.created_at = DecodeTime(created.value_or(""));
  c.updated_at = DecodeTime(updated.value_or(""));
  BERTH_ASSIGN_OR_RETURN(auto image, txn.Get(ContainerKey(ns, id, {"image"})));
  BERTH_ASSIGN_OR_RETURN(auto snapshotter, txn.Get(ContainerKey(ns, id, {"snapshotter"})));
  BERTH_ASSIGN_OR_RETURN(auto snapshot_key, txn.Get(ContainerKey(ns, id, {"snapshotKey"})));
  BERTH_ASSIGN_OR_RETURN(auto runtime, txn.Get(ContainerKey(ns, id, {"runtime", "name"})));
  c.image = image.value_or("");
  c.snapshotter = snapshotter.value_or("");
  c.snapshot_key = snapshot_key.value_or("");
  c.runtime.name = runtime.value_or("");
  BERTH_ASSIGN_OR_RETURN(c.runtime.options,
                         ReadAny(txn, ContainerKey(ns, id, {"runtime", "options"})));
  BERTH_ASSIGN_OR_RETURN(c.spec, ReadAny(txn, ContainerKey(ns, id, {"spec"})));
  BERTH_ASSIGN_OR_RETURN(auto exts, txn.ReadMap(ContainerKey(ns, id, {"extensions"})));
  for (const auto& [name, raw] : exts) {
    BERTH_ASSIGN_OR_RETURN(Any any, DecodeAny(raw));
    c.extensions.emplace(name, std::move(any));
  }
  return std::optional<Container>(std::move(c));
}

Status WriteContainer(Txn& txn, const std::string& ns, const Container& c) {
  BERTH_TRY(txn.DeleteTree(ContainerKey(ns, c.id)));
  // An empty container bucket must still exist: the marker is the bucket key itself.
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id), ""));
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"createdat"}), EncodeTime(c.created_at)));
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"updatedat"}), EncodeTime(c.updated_at)));
  if (c.spec) BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"spec"}), EncodeAny(*c.spec)));
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"image"}), c.image));
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"snapshotter"}), c.snapshotter));
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"snapshotKey"}), c.snapshot_key));
  BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"runtime", "name"}), c.runtime.name));
  if (c.runtime.options) {
    BERTH_TRY(
        txn.Put(ContainerKey(ns, c.id, {"runtime", "options"}), EncodeAny(*c.runtime.options)));
  }
  for (const auto& [name, any] : c.extensions) {
    BERTH_TRY(txn.Put(ContainerKey(ns, c.id, {"extensions", name}), EncodeAny(any)));
  }
  return WriteLabels(txn, ContainerKey(ns, c.id, {"labels"}), c.labels);
}

// containerd's validateContainer, same order and texts.
Status ValidateContainer(const Container& c) {
  if (auto s = identifiers::Validate(c.id); !s) return std::move(s).error().Wrap("container.ID");
  for (const auto& [k, v] : c.extensions) {
    if (k.empty()) {
      return InvalidArgument("container.Extension keys must not be zero-length");
    }
  }
  for (const auto& [k, v] : c.labels) {
    if (auto s = labels::Validate(k, v); !s) {
      return std::move(s).error().Wrap("containers.Labels");
    }
  }
  if (c.runtime.name.empty()) return InvalidArgument("container.Runtime.Name must be set");
  if (!c.spec) return InvalidArgument("container.Spec must be set");
  if (!c.snapshot_key.empty() && c.snapshotter.empty()) {
    return InvalidArgument("container.Snapshotter must be set if container.SnapshotKey is set");
  }
  return Ok();
}

}  // namespace

std::string EncodeAny(const Any& any) {
  std::string out;
  if (!any.type_url.empty()) {
    out.push_back(0x0a);  // field 1, length-delimited
    PutVarint(out, any.type_url.size());
    out += any.type_url;
  }
  if (!any.value.empty()) {
    out.push_back(0x12);  // field 2, length-delimited
    PutVarint(out, any.value.size());
    out += any.value;
  }
  return out;
}

Result<Any> DecodeAny(std::string_view in) {
  Any any;
  while (!in.empty()) {
    uint64_t tag = 0;
    if (!GetVarint(in, tag)) return InvalidArgument("malformed Any: truncated tag");
    uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0: {  // varint: unknown field, skip
        uint64_t ignored = 0;
        if (!GetVarint(in, ignored)) return InvalidArgument("malformed Any: truncated varint");
        break;
      }
      case 1:  // fixed64
        if (in.size() < 8) return InvalidArgument("malformed Any: truncated fixed64");
        in.remove_prefix(8);
        break;
      case 5:  // fixed32
        if (in.size() < 4) return InvalidArgument("malformed Any: truncated fixed32");
        in.remove_prefix(4);
        break;
      case 2: {
        uint64_t len = 0;
        if (!GetVarint(in, len) || len > in.size()) {
          return InvalidArgument("malformed Any: truncated field");
        }
        std::string_view bytes = in.substr(0, len);
        in.remove_prefix(len);
        if (field == 1) any.type_url.assign(bytes);
        if (field == 2) any.value.assign(bytes);
        break;
      }
      default:
        return InvalidArgument("malformed Any: bad wire type");
    }
  }
  return any;
}

Result<Container> ContainerStore::Get(const Context& ctx, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<Container> c;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    auto read = ReadContainer(txn, ns, id);
    if (!read)
      return std::move(read).error().Wrap(fmt::format("failed to read container {:?}", id));
    c = std::move(*read);
    return Ok();
  }));
  if (!c) return NotFound(fmt::format("container {:?} in namespace {:?}", id, ns));
  return std::move(*c);
}

Result<std::vector<Container>> ContainerStore::List(
    const Context& ctx, const std::vector<std::string>& filter_strings) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
  std::vector<Container> out;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    for (const auto& id : txn.Children(NsKey(ns, {kBucketContainers}))) {
      auto read = ReadContainer(txn, ns, id);
      if (!read) {
        return std::move(read).error().Wrap(fmt::format("failed to read container {:?}", id));
      }
      if (!*read) continue;
      Container& c = **read;
      if (!filter.MatchesAll()) {
        auto adaptor = filters::MakeAdaptor(
            {{"id", c.id}, {"image", c.image}, {"runtime.name", c.runtime.name}},
            {{"labels", &c.labels}});
        if (!filter.Match(adaptor)) continue;
      }
      out.push_back(std::move(c));
    }
    return Ok();
  }));
  return out;
}

Result<Container> ContainerStore::Create(const Context& ctx, Container container) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  if (auto s = ValidateContainer(container); !s) {
    return std::move(s).error().Wrap("create container failed validation");
  }
  std::erase_if(container.labels, [](const auto& kv) { return kv.second.empty(); });
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_TRY(NamespaceStore::CreateIfMissing(txn, ns));
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(ContainerKey(ns, container.id)));
    if (exists) return AlreadyExists(fmt::format("container {:?}", container.id));
    container.created_at = Now();
    container.updated_at = container.created_at;
    return WriteContainer(txn, ns, container);
  }));
  db_.NotifyMutation(false);
  return container;
}

Result<Container> ContainerStore::Update(const Context& ctx, const Container& container,
                                         const std::vector<std::string>& fieldpaths_in) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  if (container.id.empty()) return InvalidArgument("must specify a container id");
  Container updated;
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool any, txn.Exists(NsKey(ns, {kBucketContainers})));
    if (!any) {
      return NotFound(
          fmt::format("cannot update container {:?} in namespace {:?}", container.id, ns));
    }
    auto read = ReadContainer(txn, ns, container.id);
    if (!read) {
      return std::move(read).error().Wrap(
          fmt::format("failed to read container {:?}", container.id));
    }
    if (!*read) return NotFound(fmt::format("container {:?}", container.id));
    updated = std::move(**read);
    Timestamp created = updated.created_at;

    std::vector<std::string> fieldpaths = fieldpaths_in;
    if (fieldpaths.empty()) {
      // Only these fields on a full replace; immutable ones must not change (so that they can
      // become mutable later without changing the meaning of an empty mask).
      fieldpaths = {"labels", "spec", "extensions", "image", "snapshotkey"};
      if (updated.snapshotter != container.snapshotter) {
        return InvalidArgument("container.Snapshotter field is immutable");
      }
      if (updated.runtime.name != container.runtime.name) {
        return InvalidArgument("container.Runtime.Name field is immutable");
      }
    }
    for (const auto& path : fieldpaths) {
      if (path.starts_with("labels.")) {
        std::string key = path.substr(7);
        auto it = container.labels.find(key);
        updated.labels[key] = it == container.labels.end() ? "" : it->second;
      } else if (path.starts_with("extensions.")) {
        std::string key = path.substr(11);
        auto it = container.extensions.find(key);
        updated.extensions[key] = it == container.extensions.end() ? Any{} : it->second;
      } else if (path == "labels") {
        updated.labels = container.labels;
      } else if (path == "spec") {
        updated.spec = container.spec;
      } else if (path == "extensions") {
        updated.extensions = container.extensions;
      } else if (path == "image") {
        updated.image = container.image;
      } else if (path == "snapshotkey") {
        updated.snapshot_key = container.snapshot_key;
      } else {
        return InvalidArgument(fmt::format("cannot update {:?} field on {:?}", path, container.id));
      }
    }
    if (auto s = ValidateContainer(updated); !s) {
      return std::move(s).error().Wrap("update failed validation");
    }
    std::erase_if(updated.labels, [](const auto& kv) { return kv.second.empty(); });
    updated.created_at = created;
    updated.updated_at = Now();
    return WriteContainer(txn, ns, updated);
  }));
  db_.NotifyMutation(false);
  return updated;
}

Status ContainerStore::Delete(const Context& ctx, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool any, txn.Exists(NsKey(ns, {kBucketContainers})));
    if (!any) {
      return NotFound(fmt::format("cannot delete container {:?} in namespace {:?}", id, ns));
    }
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(ContainerKey(ns, id)));
    if (!exists) return NotFound(fmt::format("container {}", id));
    return txn.DeleteTree(ContainerKey(ns, id));
  }));
  db_.NotifyMutation(true);
  return Ok();
}

}  // namespace berth::metadata
