#include "metadata/namespaces.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/identifiers.h"

namespace berth::metadata {
namespace {

// The marker value of a namespace bucket: the key {"v1", ns} itself.
constexpr std::string_view kMarker;

Status ValidateName(const std::string& name) {
  if (auto s = identifiers::Validate(name); !s) {
    return std::move(s).error().Wrap(fmt::format("namespace {:?}", name));
  }
  return Ok();
}

}  // namespace

Status NamespaceStore::CreateIfMissing(Txn& txn, const std::string& name) {
  BERTH_ASSIGN_OR_RETURN(auto marker, txn.Get(NsKey(name)));
  if (!marker) {
    return txn.Put(NsKey(name), kMarker);
  }
  return Ok();
}

Status NamespaceStore::Create(const std::string& name, const Labels& labels) {
  BERTH_TRY(ValidateName(name));
  BERTH_TRY(labels::ValidateAll(labels));
  return db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(NsKey(name)));
    if (exists) {
      return AlreadyExists(fmt::format("namespace {:?}", name));
    }
    BERTH_TRY(txn.Put(NsKey(name), kMarker));
    for (const auto& [k, v] : labels) {
      if (!v.empty()) {
        BERTH_TRY(txn.Put(NsKey(name, {kBucketLabels, k}), v));
      }
    }
    return Ok();
  });
}

Result<Labels> NamespaceStore::GetLabels(const std::string& name) const {
  BERTH_TRY(ValidateName(name));
  Labels out;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(out, txn.ReadMap(NsKey(name, {kBucketLabels})));
    return Ok();
  }));
  return out;
}

Status NamespaceStore::SetLabel(const std::string& name, const std::string& key,
                                const std::string& value) {
  BERTH_TRY(ValidateName(name));
  BERTH_TRY(labels::Validate(key, value));
  return db_.Update([&](Txn& txn) -> Status {
    BERTH_TRY(CreateIfMissing(txn, name));
    if (value.empty()) {
      return txn.DeleteTree(NsKey(name, {kBucketLabels, key}));
    }
    return txn.Put(NsKey(name, {kBucketLabels, key}), value);
  });
}

Status NamespaceStore::SetLabels(const std::string& name, const Labels& labels) {
  BERTH_TRY(ValidateName(name));
  BERTH_TRY(labels::ValidateAll(labels));
  return db_.Update([&](Txn& txn) -> Status {
    BERTH_TRY(CreateIfMissing(txn, name));
    Labels non_empty;
    for (const auto& [k, v] : labels) {
      if (!v.empty()) non_empty.emplace(k, v);
    }
    return txn.WriteMap(NsKey(name, {kBucketLabels}), non_empty);
  });
}

Result<std::vector<std::string>> NamespaceStore::List() const {
  std::vector<std::string> out;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    out = txn.Children({kBucketVersion});
    return Ok();
  }));
  return out;
}

Status NamespaceStore::Delete(const std::string& name) {
  BERTH_TRY(ValidateName(name));
  return db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(NsKey(name)));
    if (!exists) {
      return NotFound(fmt::format("namespace {:?}", name));
    }
    std::vector<std::string> held;
    for (const char* bucket : {kBucketImages}) {
      BERTH_ASSIGN_OR_RETURN(bool has, txn.Exists(NsKey(name, {bucket})));
      if (has) held.emplace_back(bucket);
    }
    BERTH_ASSIGN_OR_RETURN(bool blobs, txn.Exists(NsKey(name, {kBucketContent, "blob"})));
    if (blobs) held.emplace_back("blobs");
    BERTH_ASSIGN_OR_RETURN(bool containers, txn.Exists(NsKey(name, {kBucketContainers})));
    if (containers) held.emplace_back("containers");
    for (const auto& snapshotter : txn.Children(NsKey(name, {kBucketSnapshots}))) {
      BERTH_ASSIGN_OR_RETURN(bool has, txn.Exists(NsKey(name, {kBucketSnapshots, snapshotter})));
      if (has) held.push_back(fmt::format("snapshots on {:?} snapshotter", snapshotter));
    }
    if (!held.empty()) {
      return FailedPrecondition(fmt::format("namespace {:?} must be empty, but it still has {}",
                                            name, fmt::join(held, ", ")));
    }
    return txn.DeleteTree(NsKey(name));
  });
}

}  // namespace berth::metadata
