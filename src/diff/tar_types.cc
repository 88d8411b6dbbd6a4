#include "diff/tar_types.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace berth::diff {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxPax = 1 << 20;  // pax records longer than this are not read for "size"

uint64_t Padded(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// Octal (spaces and NULs around it), or base-256 when the first byte has its high bit set.
std::optional<uint64_t> Number(std::string_view f) {
  if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80) != 0) {
    if (static_cast<unsigned char>(f[0]) == 0xff) return std::nullopt;  // negative
    uint64_t v = static_cast<unsigned char>(f[0]) & 0x7f;
    for (size_t i = 1; i < f.size(); ++i) {
      if (v > (UINT64_MAX >> 8)) return std::nullopt;
      v = (v << 8) | static_cast<unsigned char>(f[i]);
    }
    return v;
  }
  size_t i = 0;
  while (i < f.size() && (f[i] == ' ' || f[i] == '\0')) ++i;
  uint64_t v = 0;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v > (UINT64_MAX >> 3)) return std::nullopt;
    v = (v << 3) | static_cast<uint64_t>(f[i] - '0');
  }
  return v;
}

// The header checksum, as the unsigned or (old tars) signed sum of the block with the
// checksum field taken as spaces.
bool ChecksumOk(const std::string& b) {
  auto want = Number(std::string_view(b).substr(148, 8));
  if (!want) return false;
  uint64_t u = 0;
  int64_t s = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    char c = (i >= 148 && i < 156) ? ' ' : b[i];
    u += static_cast<unsigned char>(c);
    s += static_cast<signed char>(c);
  }
  return *want == u || static_cast<int64_t>(*want) == s;
}

std::string_view CString(std::string_view f) { return f.substr(0, f.find('\0')); }

std::string Name(const std::string& b) {
  std::string name(CString(std::string_view(b).substr(0, 100)));
  if (std::string_view(b).substr(257, 6) == std::string_view("ustar\0", 6)) {
    std::string_view prefix = CString(std::string_view(b).substr(345, 155));
    if (!prefix.empty()) name = std::string(prefix) + "/" + name;
  }
  return name;
}

}  // namespace

void TarTypeScanner::Feed(std::string_view bytes) {
  while (!bytes.empty() && !done_) {
    if (pax_left_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(pax_left_, bytes.size()));
      if (pax_.size() + n <= kMaxPax) pax_.append(bytes.substr(0, n));
      pax_left_ -= n;
      bytes.remove_prefix(n);
      if (pax_left_ == 0) PaxData();
      continue;
    }
    if (skip_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(skip_, bytes.size()));
      skip_ -= n;
      bytes.remove_prefix(n);
      continue;
    }
    size_t n = std::min(kBlock - block_.size(), bytes.size());
    block_.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
    if (block_.size() == kBlock) {
      Header();
      block_.clear();
    }
  }
}

void TarTypeScanner::Header() {
  if (extensions_ > 0) {  // an old GNU sparse extension: more follow while its flag is set
    extensions_ = block_[504] != '\0' ? 1 : 0;
    if (extensions_ == 0) skip_ = pending_data_;
    return;
  }
  if (std::all_of(block_.begin(), block_.end(), [](char c) { return c == '\0'; }) ||
      !ChecksumOk(block_)) {
    done_ = true;  // the end of the archive, or something libarchive will judge
    return;
  }
  auto size = Number(std::string_view(block_).substr(124, 12));
  if (!size) {
    done_ = true;
    return;
  }
  const char type = block_[156];
  switch (type) {
    case 'x':  // pax extended header: its "size" record applies to the next entry
      pax_.clear();
      pax_left_ = *size;
      pax_pad_ = Padded(*size) - *size;
      if (pax_left_ == 0) PaxData();
      return;
    case 'g':  // pax global header, GNU long name / long link: data only
    case 'L':
    case 'K':
      skip_ = Padded(*size);
      return;
    default:
      break;
  }
  const uint64_t data = size_.value_or(*size);
  size_.reset();
  switch (type) {
    case '0':
    case '\0':
      skip_ = Padded(data);
      return;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
      // Links, devices, directories and FIFOs carry no data; whether one that claims some is
      // followed by it is libarchive's call: stop following rather than guess.
      if (data > 0) done_ = true;
      return;
    case 'S':  // old GNU sparse: extension headers (flag at 482) before the stored data
      if (block_[482] != '\0') {
        extensions_ = 1;
        pending_data_ = Padded(data);
      } else {
        skip_ = Padded(data);
      }
      return;
    default:
      break;
  }
  std::string shown = (type >= 0x21 && type < 0x7f) ? fmt::format("'{}'", type)
                                                    : fmt::format("0x{:02x}", type & 0xff);
  refusal_ = InvalidArgument(
      fmt::format("tar entry {:?}: unhandled tar header type {}", Name(block_), shown));
  done_ = true;
}

void TarTypeScanner::PaxData() {
  // Records: "<length> <key>=<value>\n".
  std::string_view rest = pax_;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) break;
    size_t len = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + sp, len);
    if (ec != std::errc() || p != rest.data() + sp || len <= sp + 1 || len > rest.size()) break;
    std::string_view record = rest.substr(sp + 1, len - sp - 1);
    if (!record.empty() && record.back() == '\n') record.remove_suffix(1);
    if (record.rfind("size=", 0) == 0) {
      std::string_view v = record.substr(5);
      uint64_t n = 0;
      auto [q, ec2] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec2 == std::errc() && q == v.data() + v.size()) size_ = n;
    }
    rest.remove_prefix(len);
  }
  pax_.clear();
  skip_ = pax_pad_;
  pax_pad_ = 0;
}

}  // namespace berth::diff
