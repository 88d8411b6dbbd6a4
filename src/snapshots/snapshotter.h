#pragma once
// The snapshotter contract (containerd's snapshots/snapshotter.go). A snapshot is a filesystem
// tree identified by a key: Active snapshots are writable and can be committed into Committed
// (read-only, parents of others); Views are read-only, never committed. Every snapshot has an
// optional committed parent. Implementations: overlay/, native/, btrfs/, proxy/ (a remote one
// over the snapshots gRPC API); metadata/ wraps one with namespaces.
//
// Errors, by class:
//   NotFound           - key (or parent) does not exist
//   AlreadyExists      - Prepare/View/Commit onto a key or name in use
//   InvalidArgument    - parent is not committed; bad fieldpath
//   FailedPrecondition - Remove of a snapshot that has children; Commit of a non-active key;
//                        Mounts of a committed snapshot
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/context.h"
#include "common/errdefs.h"
#include "common/labels.h"
#include "common/mount.h"
#include "common/timeutil.h"

namespace berth::snapshots {

enum class Kind { kUnknown = 0, kView = 1, kActive = 2, kCommitted = 3 };  // wire values
std::string_view KindName(Kind k);   // "View", "Active", "Committed", "Unknown"
Kind ParseKind(std::string_view s);  // case-insensitive

struct Info {
  Kind kind = Kind::kUnknown;
  std::string name;    // key or committed name
  std::string parent;  // "" = none
  Labels labels;
  Timestamp created{};
  Timestamp updated{};
};

struct Usage {
  int64_t inodes = 0;
  int64_t size = 0;  // bytes
};

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;

  virtual Result<snapshots::Info> Stat(const Context& ctx, const std::string& key) = 0;
  // Mutable: "labels", "labels.<k>"; none = labels.
  virtual Result<snapshots::Info> Update(const Context& ctx, const snapshots::Info& info,
                                         const std::vector<std::string>& fieldpaths) = 0;
  // Active: current disk use of the writable layer; committed: recorded at commit.
  virtual Result<snapshots::Usage> Usage(const Context& ctx, const std::string& key) = 0;
  virtual Result<std::vector<mount::Mount>> Mounts(const Context& ctx, const std::string& key) = 0;
  // Creates active snapshot `key` on committed `parent` ("" = none).
  virtual Result<std::vector<mount::Mount>> Prepare(const Context& ctx, const std::string& key,
                                                    const std::string& parent,
                                                    const Labels& labels) = 0;
  // Creates read-only view `key` of committed `parent`.
  virtual Result<std::vector<mount::Mount>> View(const Context& ctx, const std::string& key,
                                                 const std::string& parent,
                                                 const Labels& labels) = 0;
  // Turns active `key` into committed `name`; `key` is gone afterwards.
  virtual Status Commit(const Context& ctx, const std::string& name, const std::string& key,
                        const Labels& labels) = 0;
  virtual Status Remove(const Context& ctx, const std::string& key) = 0;
  // Filters over name, parent, kind ("active"/"view"/"committed"), labels.*.
  virtual Status Walk(const Context& ctx, const std::function<Status(const snapshots::Info&)>& fn,
                      const std::vector<std::string>& filters) = 0;
  // Removes directories no snapshot uses any more (after a crash, or Remove's leftovers).
  // NotImplemented where unsupported.
  virtual Status Cleanup(const Context& ctx) = 0;
};

}  // namespace berth::snapshots
