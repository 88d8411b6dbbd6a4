#pragma once
// Namespaces: the top-level buckets of the metadata store (containerd's metadata/namespaces.go).
#include <string>
#include <vector>

#include "common/labels.h"
#include "metadata/db.h"

namespace berth::metadata {

class NamespaceStore {
 public:
  explicit NamespaceStore(Db& db) : db_(db) {}

  // InvalidArgument for a bad identifier or label; AlreadyExists if present.
  Status Create(const std::string& name, const Labels& labels);
  // Labels of `name`; an unknown namespace has none (never NotFound, as containerd).
  Result<Labels> GetLabels(const std::string& name) const;
  // Sets one label, creating the namespace if needed; "" deletes the label.
  Status SetLabel(const std::string& name, const std::string& key, const std::string& value);
  // Replaces all labels.
  Status SetLabels(const std::string& name, const Labels& labels);
  Result<std::vector<std::string>> List() const;
  // NotFound if absent; FailedPrecondition naming what it still holds (leases don't count).
  Status Delete(const std::string& name);
  // Creates the namespace's bucket if absent: any write into a namespace does this.
  static Status CreateIfMissing(Txn& txn, const std::string& name);

 private:
  Db& db_;
};

}  // namespace berth::metadata
