#include "snapshots/storage/record.h"

#include <cstring>

#include <fmt/format.h>

namespace berth::snapshots::storage {
namespace {

constexpr uint8_t kRecordVersion = 1;

template <class T>
void PutFixed(std::string& out, T v) {
  auto u = static_cast<uint64_t>(v);
  for (size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
}

void PutString(std::string& out, std::string_view s) {
  PutFixed<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Reads from a byte range; any overrun sets `ok` to false and yields zero values.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <class T>
  T Fixed() {
    if (data_.size() < sizeof(T)) {
      ok_ = false;
      return T{};
    }
    uint64_t u = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      u |= static_cast<uint64_t>(static_cast<unsigned char>(data_[i])) << (8 * i);
    }
    data_.remove_prefix(sizeof(T));
    return static_cast<T>(u);
  }
  std::string String() {
    auto n = Fixed<uint32_t>();
    if (!ok_ || data_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string s(data_.substr(0, n));
    data_.remove_prefix(n);
    return s;
  }
  bool Ok() const { return ok_; }
  bool Done() const { return data_.empty(); }

 private:
  std::string_view data_;
  bool ok_ = true;
};

}  // namespace

std::string EncodeRecord(const StoredSnapshot& s) {
  std::string out;
  out.reserve(64 + s.parent.size());
  PutFixed<uint8_t>(out, kRecordVersion);
  PutFixed<uint64_t>(out, s.id);
  PutFixed<uint8_t>(out, static_cast<uint8_t>(s.kind));
  PutString(out, s.parent);
  PutFixed<int64_t>(out, UnixNanos(s.created));
  PutFixed<int64_t>(out, UnixNanos(s.updated));
  PutFixed<int64_t>(out, s.usage.inodes);
  PutFixed<int64_t>(out, s.usage.size);
  PutFixed<uint32_t>(out, static_cast<uint32_t>(s.labels.size()));
  for (const auto& [k, v] : s.labels) {
    PutString(out, k);
    PutString(out, v);
  }
  return out;
}

Result<StoredSnapshot> DecodeRecord(std::string_view name, std::string_view data) {
  Reader r(data);
  StoredSnapshot s;
  auto version = r.Fixed<uint8_t>();
  if (r.Ok() && version != kRecordVersion) {
    return Error(Errc::kDataLoss,
                 fmt::format("snapshot {}: unsupported record version {}", name, version));
  }
  s.id = r.Fixed<uint64_t>();
  auto kind = r.Fixed<uint8_t>();
  s.kind =
      kind <= static_cast<uint8_t>(Kind::kCommitted) ? static_cast<Kind>(kind) : Kind::kUnknown;
  s.parent = r.String();
  s.created = FromUnixNanos(r.Fixed<int64_t>());
  s.updated = FromUnixNanos(r.Fixed<int64_t>());
  s.usage.inodes = r.Fixed<int64_t>();
  s.usage.size = r.Fixed<int64_t>();
  auto count = r.Fixed<uint32_t>();
  for (uint32_t i = 0; r.Ok() && i < count; ++i) {
    std::string k = r.String();
    std::string v = r.String();
    s.labels.emplace(std::move(k), std::move(v));
  }
  if (!r.Ok() || !r.Done()) {
    return Error(Errc::kDataLoss, fmt::format("snapshot {}: corrupt metadata record", name));
  }
  return s;
}

std::string EncodeId(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(id & 0xff);
    id >>= 8;
  }
  return out;
}

uint64_t DecodeId(std::string_view data) {
  if (data.size() < 8) return 0;
  uint64_t id = 0;
  for (size_t i = 0; i < 8; ++i) {
    id = (id << 8) | static_cast<unsigned char>(data[i]);
  }
  return id;
}

}  // namespace berth::snapshots::storage
