#include "diff/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#ifdef BERTH_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

namespace berth::diff {
namespace {

constexpr size_t kInChunk = 256 << 10;
constexpr size_t kOutChunk = 256 << 10;

Error Corrupt(std::string_view format, std::string_view what) {
  return InvalidArgument(fmt::format("{}: {}", format, what));
}

class PassThrough final : public Reader {
 public:
  explicit PassThrough(Reader& src) : src_(src) {}
  Result<size_t> Read(char* buf, size_t n) override { return src_.Read(buf, n); }

 private:
  Reader& src_;
};

// Input buffering shared by the gzip readers: refills only when everything was consumed.
struct InputBuffer {
  explicit InputBuffer(Reader& src) : src(src), data(kInChunk) {}
  // Makes sure some input is available unless the source is at its end.
  Status Refill(size_t& avail) {
    if (avail > 0 || eof) return Ok();
    BERTH_ASSIGN_OR_RETURN(size_t n, src.Read(data.data(), data.size()));
    if (n == 0) eof = true;
    avail = n;
    start = data.data();
    return Ok();
  }
  Reader& src;
  std::vector<char> data;
  char* start = nullptr;
  bool eof = false;
};

// Multi-member gzip: between members, end of input ends the stream; anything that is not a
// gzip header is an error (Go's gzip.Reader in multistream mode).
Status CheckNextMember(const char* p, size_t avail) {
  if (static_cast<unsigned char>(p[0]) != 0x1f ||
      (avail > 1 && static_cast<unsigned char>(p[1]) != 0x8b)) {
    return Corrupt("gzip", "invalid header after end of member");
  }
  return Ok();
}

#ifdef BERTH_HAVE_ISAL
class IsalGunzip final : public Reader {
 public:
  explicit IsalGunzip(Reader& src) : in_(src), st_(std::make_unique<inflate_state>()) {
    isal_inflate_init(st_.get());
    st_->crc_flag = ISAL_GZIP;
  }

  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min<size_t>(n, UINT32_MAX);
    for (;;) {
      if (done_) return size_t{0};
      size_t avail = st_->avail_in;
      BERTH_TRY(in_.Refill(avail));
      if (avail != st_->avail_in) {
        st_->next_in = reinterpret_cast<uint8_t*>(in_.start);
        st_->avail_in = static_cast<uint32_t>(avail);
      }
      if (member_done_) {
        if (st_->avail_in == 0) {
          done_ = true;
          continue;
        }
        BERTH_TRY(CheckNextMember(reinterpret_cast<const char*>(st_->next_in), st_->avail_in));
        uint8_t* next = st_->next_in;
        uint32_t left = st_->avail_in;
        isal_inflate_reset(st_.get());
        st_->crc_flag = ISAL_GZIP;
        st_->next_in = next;
        st_->avail_in = left;
        member_done_ = false;
      }
      uint32_t in_before = st_->avail_in;
      st_->next_out = reinterpret_cast<uint8_t*>(buf);
      st_->avail_out = static_cast<uint32_t>(n);
      int ret = isal_inflate(st_.get());
      if (ret < 0) return Corrupt("gzip", IsalError(ret));
      size_t produced = n - st_->avail_out;
      if (st_->block_state == ISAL_BLOCK_FINISH) member_done_ = true;
      if (produced > 0) return produced;
      if (!member_done_ && st_->avail_in == in_before && in_.eof) {
        return Corrupt("gzip", "unexpected end of stream");
      }
    }
  }

 private:
  static std::string_view IsalError(int ret) {
    switch (ret) {
      case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
      case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
      case ISAL_INVALID_LOOKBACK:
        return "invalid lookback distance";
      case ISAL_INVALID_WRAPPER:
        return "invalid header";
      case ISAL_UNSUPPORTED_METHOD:
        return "unsupported compression method";
      case ISAL_INCORRECT_CHECKSUM:
        return "checksum error";
      default:
        return "decompression error";
    }
  }

  InputBuffer in_;
  std::unique_ptr<inflate_state> st_;
  bool member_done_ = false;
  bool done_ = false;
};
#endif

class ZlibGunzip final : public Reader {
 public:
  explicit ZlibGunzip(Reader& src) : in_(src) {}
  ~ZlibGunzip() override {
    if (init_) inflateEnd(&z_);
  }
  Status Init() {
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) return Unknown("gzip: inflateInit2 failed");
    init_ = true;
    return Ok();
  }

  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min<size_t>(n, UINT32_MAX);
    for (;;) {
      if (done_) return size_t{0};
      size_t avail = z_.avail_in;
      BERTH_TRY(in_.Refill(avail));
      if (avail != z_.avail_in) {
        z_.next_in = reinterpret_cast<Bytef*>(in_.start);
        z_.avail_in = static_cast<uInt>(avail);
      }
      if (member_done_) {
        if (z_.avail_in == 0) {
          done_ = true;
          continue;
        }
        BERTH_TRY(CheckNextMember(reinterpret_cast<const char*>(z_.next_in), z_.avail_in));
        if (inflateReset(&z_) != Z_OK) return Unknown("gzip: inflateReset failed");
        member_done_ = false;
      }
      uInt in_before = z_.avail_in;
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = static_cast<uInt>(n);
      int ret = inflate(&z_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        member_done_ = true;
      } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
        return Corrupt("gzip", z_.msg != nullptr ? z_.msg : "decompression error");
      }
      size_t produced = n - z_.avail_out;
      if (produced > 0) return produced;
      if (!member_done_ && z_.avail_in == in_before && in_.eof) {
        return Corrupt("gzip", "unexpected end of stream");
      }
    }
  }

 private:
  InputBuffer in_;
  z_stream z_{};
  bool init_ = false;
  bool member_done_ = false;
  bool done_ = false;
};

class ZstdReader final : public Reader {
 public:
  explicit ZstdReader(Reader& src) : src_(src), in_(kInChunk), ds_(ZSTD_createDStream()) {}
  ~ZstdReader() override { ZSTD_freeDStream(ds_); }
  Status Init() {
    if (ds_ == nullptr || ZSTD_isError(ZSTD_initDStream(ds_))) {
      return Unknown("zstd: cannot create a decompression stream");
    }
    return Ok();
  }

  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      if (in_buf_.pos == in_buf_.size && !eof_) {
        BERTH_ASSIGN_OR_RETURN(size_t got, src_.Read(in_.data(), in_.size()));
        in_buf_ = {in_.data(), got, 0};
        if (got == 0) eof_ = true;
      }
      ZSTD_outBuffer out{buf, n, 0};
      size_t in_before = in_buf_.pos;
      size_t ret = ZSTD_decompressStream(ds_, &out, &in_buf_);
      if (ZSTD_isError(ret)) return Corrupt("zstd", ZSTD_getErrorName(ret));
      frame_open_ = ret != 0;
      if (out.pos > 0) return out.pos;
      if (eof_ && in_buf_.pos == in_before) {
        if (frame_open_ && seen_input_) return Corrupt("zstd", "unexpected end of stream");
        return size_t{0};
      }
      seen_input_ = seen_input_ || in_buf_.pos > in_before;
    }
  }

 private:
  Reader& src_;
  std::vector<char> in_;
  ZSTD_inBuffer in_buf_{nullptr, 0, 0};
  ZSTD_DStream* ds_;
  bool eof_ = false;
  bool frame_open_ = false;
  bool seen_input_ = false;
};

#ifdef BERTH_HAVE_ISAL
class IsalGzipWriter final : public GzipWriter {
 public:
  explicit IsalGzipWriter(Sink& out)
      : out_(out),
        level_buf_(ISAL_DEF_LVL1_DEFAULT),
        buf_(kOutChunk),
        z_(std::make_unique<isal_zstream>()) {
    isal_deflate_init(z_.get());
    z_->level = 1;
    z_->level_buf = level_buf_.data();
    z_->level_buf_size = static_cast<uint32_t>(level_buf_.size());
    z_->gzip_flag = IGZIP_GZIP;
  }
  Status Write(std::string_view data) override {
    while (!data.empty()) {
      size_t chunk = std::min<size_t>(data.size(), 1u << 30);
      z_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
      z_->avail_in = static_cast<uint32_t>(chunk);
      while (z_->avail_in > 0) BERTH_TRY(Step());
      data.remove_prefix(chunk);
    }
    return Ok();
  }
  Status Close() override {
    z_->end_of_stream = 1;
    z_->next_in = nullptr;
    z_->avail_in = 0;
    while (z_->internal_state.state != ZSTATE_END) BERTH_TRY(Step());
    return Ok();
  }

 private:
  Status Step() {
    z_->next_out = reinterpret_cast<uint8_t*>(buf_.data());
    z_->avail_out = static_cast<uint32_t>(buf_.size());
    if (int ret = isal_deflate(z_.get()); ret != COMP_OK) {
      return Unknown(fmt::format("gzip: isal_deflate failed ({})", ret));
    }
    size_t produced = buf_.size() - z_->avail_out;
    if (produced > 0) BERTH_TRY(out_.Write({buf_.data(), produced}));
    return Ok();
  }

  Sink& out_;
  std::vector<uint8_t> level_buf_;
  std::vector<char> buf_;
  std::unique_ptr<isal_zstream> z_;
};
#endif

class ZlibGzipWriter final : public GzipWriter {
 public:
  explicit ZlibGzipWriter(Sink& out) : out_(out), buf_(kOutChunk) {}
  ~ZlibGzipWriter() override {
    if (init_) deflateEnd(&z_);
  }
  Status Init() {
    if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return Unknown("gzip: deflateInit2 failed");
    }
    init_ = true;
    return Ok();
  }
  Status Write(std::string_view data) override {
    while (!data.empty()) {
      size_t chunk = std::min<size_t>(data.size(), 1u << 30);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      z_.avail_in = static_cast<uInt>(chunk);
      while (z_.avail_in > 0) BERTH_TRY(Step(Z_NO_FLUSH));
      data.remove_prefix(chunk);
    }
    return Ok();
  }
  Status Close() override {
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(int ret, Step(Z_FINISH));
      if (ret == Z_STREAM_END) return Ok();
    }
  }

 private:
  Result<int> Step(int flush) {
    z_.next_out = reinterpret_cast<Bytef*>(buf_.data());
    z_.avail_out = static_cast<uInt>(buf_.size());
    int ret = deflate(&z_, flush);
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
      return Unknown(fmt::format("gzip: deflate failed ({})", ret));
    }
    size_t produced = buf_.size() - z_.avail_out;
    if (produced > 0) BERTH_TRY(out_.Write({buf_.data(), produced}));
    return ret;
  }

  Sink& out_;
  std::vector<char> buf_;
  z_stream z_{};
  bool init_ = false;
};

}  // namespace

BlobReader::BlobReader(content::ReaderAt& blob, size_t buffer_size)
    : blob_(blob), buf_(buffer_size) {}

Status BlobReader::Fill(size_t want) {
  if (pos_ > 0 && len_ - pos_ < want) {  // compact so that `want` bytes fit
    std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
    len_ -= pos_;
    pos_ = 0;
  }
  while (!eof_ && len_ - pos_ < want && len_ < buf_.size()) {
    BERTH_ASSIGN_OR_RETURN(size_t n, blob_.ReadAt(buf_.data() + len_, buf_.size() - len_, offset_));
    if (n == 0) {
      eof_ = true;
      break;
    }
    hash_.Update(buf_.data() + len_, n);
    count_ += static_cast<int64_t>(n);
    offset_ += static_cast<int64_t>(n);
    len_ += n;
  }
  return Ok();
}

Result<size_t> BlobReader::Read(char* buf, size_t n) {
  if (pos_ == len_) {
    pos_ = len_ = 0;
    BERTH_TRY(Fill(1));
  }
  size_t got = std::min(n, len_ - pos_);
  std::memcpy(buf, buf_.data() + pos_, got);
  pos_ += got;
  return got;
}

Result<std::string_view> BlobReader::Peek(size_t n) {
  n = std::min(n, buf_.size());
  BERTH_TRY(Fill(n));
  return std::string_view(buf_.data() + pos_, std::min(n, len_ - pos_));
}

Status BlobReader::Drain() {
  for (;;) {
    pos_ = len_ = 0;
    BERTH_TRY(Fill(buf_.size()));
    if (len_ == 0) return Ok();
  }
}

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

Compression DetectCompression(std::string_view head) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.size() >= 3 && byte(0) == 0x1f && byte(1) == 0x8b && byte(2) == 0x08) {
    return Compression::kGzip;
  }
  if (head.size() >= 4 && byte(0) == 0x28 && byte(1) == 0xb5 && byte(2) == 0x2f &&
      byte(3) == 0xfd) {
    return Compression::kZstd;
  }
  if (head.size() >= 8) {
    uint32_t magic = byte(0) | byte(1) << 8 | byte(2) << 16 | static_cast<uint32_t>(byte(3)) << 24;
    if ((magic & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START)
      return Compression::kZstd;
  }
  return Compression::kNone;
}

Result<Processor> ProcessorFor(std::string_view media_type) {
  std::string_view base = media_type.substr(0, media_type.find('+'));
  std::string_view ext =
      base.size() < media_type.size() ? media_type.substr(base.size() + 1) : std::string_view();
  if (base == "application/vnd.oci.image.layer.v1.tar" ||
      base == "application/vnd.oci.image.layer.nondistributable.v1.tar") {
    if (ext.empty()) return Processor::kRaw;
    if (ext == "gzip" || ext == "zstd") return Processor::kDetect;
  } else if (base == "application/vnd.docker.image.rootfs.diff.tar" ||
             base == "application/vnd.docker.image.rootfs.foreign.diff.tar" ||
             base == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
             base == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") {
    if (ext.empty()) return Processor::kDetect;
  }
  // Wrapped types (+encrypted, ...) need a processor berth does not have either.
  return NotImplemented(fmt::format(
      "failed to get stream processor for {}: no processor for media-type", media_type));
}

Result<std::unique_ptr<Reader>> Decompress(Compression c, Reader& src, GzipImpl impl) {
  switch (c) {
    case Compression::kNone:
      return std::unique_ptr<Reader>(std::make_unique<PassThrough>(src));
    case Compression::kGzip: {
#ifdef BERTH_HAVE_ISAL
      if (impl == GzipImpl::kDefault) {
        return std::unique_ptr<Reader>(std::make_unique<IsalGunzip>(src));
      }
#endif
      (void)impl;
      auto z = std::make_unique<ZlibGunzip>(src);
      BERTH_TRY(z->Init());
      return std::unique_ptr<Reader>(std::move(z));
    }
    case Compression::kZstd: {
      auto z = std::make_unique<ZstdReader>(src);
      BERTH_TRY(z->Init());
      return std::unique_ptr<Reader>(std::move(z));
    }
  }
  return NotImplemented("unsupported compression format");
}

Result<std::unique_ptr<GzipWriter>> GzipWriter::Create(Sink& out, GzipImpl impl) {
#ifdef BERTH_HAVE_ISAL
  if (impl == GzipImpl::kDefault) {
    return std::unique_ptr<GzipWriter>(std::make_unique<IsalGzipWriter>(out));
  }
#endif
  (void)impl;
  auto z = std::make_unique<ZlibGzipWriter>(out);
  BERTH_TRY(z->Init());
  return std::unique_ptr<GzipWriter>(std::move(z));
}

}  // namespace berth::diff
