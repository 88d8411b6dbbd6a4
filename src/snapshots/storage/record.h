#pragma once
// The value stored under "S"<name> in the metastore (metastore.h): a versioned, little-endian,
// length-prefixed record.
//   u8 version (1) | u64 id | u8 kind | str parent | i64 created | i64 updated (unix ns)
//   | i64 inodes | i64 size | u32 count | count x (str key, str value)
//   str = u32 length + bytes
#include <cstdint>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "common/labels.h"
#include "snapshots/snapshotter.h"

namespace berth::snapshots::storage {

struct StoredSnapshot {
  uint64_t id = 0;
  Kind kind = Kind::kUnknown;
  std::string parent;
  Timestamp created{};
  Timestamp updated{};
  snapshots::Usage usage;
  Labels labels;
};

std::string EncodeRecord(const StoredSnapshot& s);
// DataLoss naming `name` when the bytes are not a record.
Result<StoredSnapshot> DecodeRecord(std::string_view name, std::string_view data);

// Big-endian u64, so byte order is numeric order in LMDB keys.
std::string EncodeId(uint64_t id);
uint64_t DecodeId(std::string_view data);  // first 8 bytes; 0 if shorter

}  // namespace berth::snapshots::storage
