#pragma once
// Tar entry types as containerd applies them (issue 13, point 5). libarchive reads any typeflag
// it does not know as a regular file; containerd refuses such an entry ("unhandled tar header
// type"). TarTypeScanner follows the same bytes libarchive reads, header by header, and keeps
// the first header whose type containerd would not apply, so the apply fails before that entry.
//
// It only ever refuses a header whose checksum verifies: on anything it cannot follow (a bad
// checksum, a negative size) it stops looking and leaves the stream to libarchive.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth::diff {

class TarTypeScanner {
 public:
  // The next bytes of the (decompressed) tar stream.
  void Feed(std::string_view bytes);
  // The refusal for the first entry of an unhandled type, if one was seen.
  const std::optional<Error>& Refusal() const { return refusal_; }

 private:
  void Header();
  void PaxData();

  std::string block_;             // the header block being collected
  uint64_t skip_ = 0;             // data and padding still to pass over
  std::string pax_;               // a pax extended header's records, being collected
  uint64_t pax_left_ = 0;         // its bytes still to come
  uint64_t pax_pad_ = 0;          // padding after it
  std::optional<uint64_t> size_;  // the next entry's size, from a pax "size" record
  int extensions_ = 0;            // old GNU sparse extension headers to come (0 or 1: chained)
  uint64_t pending_data_ = 0;     // the sparse entry's stored data, after its extensions
  bool done_ = false;             // end of archive, or lost: nothing more is looked at
  std::optional<Error> refusal_;
};

}  // namespace berth::diff
