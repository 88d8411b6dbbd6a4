#pragma once
// Layer streams: sequential, hashed reads of a blob; decompression by media type and magic
// (containerd's archive/compression and diff/stream.go); gzip compression for new layers.
// Everything streams in bounded buffers: a layer is never held in memory whole.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/errdefs.h"
#include "content/content.h"

namespace berth::diff {

inline constexpr std::string_view kMediaTypeLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";

// A pull stream of bytes.
class Reader {
 public:
  virtual ~Reader() = default;
  // Reads up to `n` bytes into `buf`; 0 means the end of the stream.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// A push stream of bytes.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Write(std::string_view data) = 0;
};

// Reads a content blob from start to end, hashing (sha256) and counting every byte.
class BlobReader final : public Reader {
 public:
  explicit BlobReader(content::ReaderAt& blob, size_t buffer_size = 1 << 20);
  Result<size_t> Read(char* buf, size_t n) override;
  // Up to `n` (<= buffer size) bytes ahead without consuming them; fewer at the end.
  Result<std::string_view> Peek(size_t n);
  // Reads (and hashes) whatever is left.
  Status Drain();
  berth::Digest Digest() const { return hash_.Current(); }
  int64_t Count() const { return count_; }

 private:
  Status Fill(size_t want);

  content::ReaderAt& blob_;
  std::vector<char> buf_;
  size_t pos_ = 0;      // next unread byte in buf_
  size_t len_ = 0;      // valid bytes in buf_
  int64_t offset_ = 0;  // blob offset of buf_[len_]
  bool eof_ = false;
  Sha256 hash_;
  int64_t count_ = 0;
};

enum class Compression { kNone, kGzip, kZstd };
std::string_view CompressionName(Compression c);
// By magic: gzip 1f 8b 08; zstd 28 b5 2f fd or a skippable frame (5? 2a 4d 18); else none.
Compression DetectCompression(std::string_view head);

// What a layer media type needs, as containerd's images.DiffCompression: kRaw for an
// uncompressed OCI tar (read as is), kDetect for gzip/zstd and the Docker types (the Docker
// "tar" type may well be gzip: the magic decides). NotImplemented for anything else, with
// containerd's text "failed to get stream processor for <type>: no processor for media-type".
enum class Processor { kRaw, kDetect };
Result<Processor> ProcessorFor(std::string_view media_type);

enum class GzipImpl { kDefault, kZlib };  // kDefault = ISA-L igzip when built with it
// A decompressing reader over `src` (which must outlive it). kNone passes bytes through.
// Concatenated gzip members and zstd frames are read as one stream; data after the last gzip
// member that is not another member is an error, as Go's gzip reader has it.
Result<std::unique_ptr<Reader>> Decompress(Compression c, Reader& src,
                                           GzipImpl impl = GzipImpl::kDefault);

// gzip-compresses into `out` (which must outlive it). Close() writes the trailer.
class GzipWriter : public Sink {
 public:
  static Result<std::unique_ptr<GzipWriter>> Create(Sink& out, GzipImpl impl = GzipImpl::kDefault);
  virtual Status Close() = 0;
};

}  // namespace berth::diff
