#pragma once
// SPDY/3 header compression: one zlib stream per direction per connection, primed with the
// SPDY/3 dictionary, every header block ending in a sync flush (never a finish or a reset), so the
// receiver inflates exactly one frame's block bytes into one whole header block.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth::cri::streaming::spdy {

// The SPDY/3 draft's header dictionary (spdystream's headerDictionary): 1423 bytes, no trailing
// NUL; its adler32, which a compressed stream names as its DICTID, is kDictionaryId.
std::string_view Dictionary();
inline constexpr uint32_t kDictionaryId = 0xE3C6A7C2;

// Decompressed bytes one header block may grow to unless the owner says otherwise: a block that
// inflates beyond it is a compression bomb, not a reason to grow memory.
inline constexpr size_t kDefaultMaxHeaderBlockSize = size_t{256} * 1024;

// The sending side: compresses each header block a connection sends through one deflate stream.
class Deflater {
 public:
  // `level` as zlib's (0-9; -1 = zlib's default). spdystream writes at 9 (Go's BestCompression).
  explicit Deflater(int level = 9);
  ~Deflater();
  Deflater(Deflater&&) noexcept;
  Deflater& operator=(Deflater&&) noexcept;

  // Appends `block` compressed and sync-flushed (it ends in 00 00 ff ff) to `out`. An error
  // leaves the stream unusable: the peer's inflater can no longer follow it.
  Status Compress(std::string_view block, std::string& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The receiving side: one inflate stream over every header block of a connection.
class Inflater {
 public:
  explicit Inflater(size_t max_block_size = kDefaultMaxHeaderBlockSize);
  ~Inflater();
  Inflater(Inflater&&) noexcept;
  Inflater& operator=(Inflater&&) noexcept;

  // Decompresses one frame's header block bytes, which must yield the whole block.
  // ResourceExhausted when it inflates past the limit; InvalidArgument when the stream is not
  // zlib, names another dictionary, ends, or is corrupt. Any error leaves the stream unusable.
  Result<std::string> Decompress(std::string_view compressed);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::cri::streaming::spdy
