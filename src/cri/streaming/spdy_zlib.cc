#include "cri/streaming/spdy_zlib.h"

#include <zlib.h>

#include <fmt/format.h>

#include <algorithm>

namespace berth::cri::streaming::spdy {
namespace {

// From the SPDY/3 draft (and spdystream's dictionary.go), byte for byte. Octal escapes are three
// digits, so none swallows a following digit.
constexpr char kSpdyDictionary[] =
    "\000\000\000\007options\000\000\000\004head\000\000\000\004post\000\000"
    "\000\003put\000\000\000\006delete\000\000\000\005trace\000\000\000\006ac"
    "cept\000\000\000\016accept-charset\000\000\000\017accept-encoding\000"
    "\000\000\017accept-language\000\000\000\015accept-ranges\000\000\000\003"
    "age\000\000\000\005allow\000\000\000\015authorization\000\000\000\015cac"
    "he-control\000\000\000\012connection\000\000\000\014content-base\000\000"
    "\000\020content-encoding\000\000\000\020content-language\000\000\000\016"
    "content-length\000\000\000\020content-location\000\000\000\013content-md"
    "5\000\000\000\015content-range\000\000\000\014content-type\000\000\000"
    "\004date\000\000\000\004etag\000\000\000\006expect\000\000\000\007expire"
    "s\000\000\000\004from\000\000\000\004host\000\000\000\010if-match\000"
    "\000\000\021if-modified-since\000\000\000\015if-none-match\000\000\000"
    "\010if-range\000\000\000\023if-unmodified-since\000\000\000\015last-modi"
    "fied\000\000\000\010location\000\000\000\014max-forwards\000\000\000\006"
    "pragma\000\000\000\022proxy-authenticate\000\000\000\023proxy-authorizat"
    "ion\000\000\000\005range\000\000\000\007referer\000\000\000\013retry-aft"
    "er\000\000\000\006server\000\000\000\002te\000\000\000\007trailer\000"
    "\000\000\021transfer-encoding\000\000\000\007upgrade\000\000\000\012user"
    "-agent\000\000\000\004vary\000\000\000\003via\000\000\000\007warning\000"
    "\000\000\020www-authenticate\000\000\000\006method\000\000\000\003get"
    "\000\000\000\006status\000\000\000\006200 OK\000\000\000\007version\000"
    "\000\000\010HTTP/1.1\000\000\000\003url\000\000\000\006public\000\000"
    "\000\012set-cookie\000\000\000\012keep-alive\000\000\000\006origin100101"
    "201202205206300302303304305306307402405406407408409410411412413414415416"
    "417502504505203 Non-Authoritative Information204 No Content301 Moved Per"
    "manently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Int"
    "ernal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar "
    "Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, S"
    "at, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
    "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-ag"
    "e=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
static_assert(sizeof(kSpdyDictionary) - 1 == 1423, "the SPDY/3 dictionary is 1423 bytes");

// Output grows in steps of this much while inflating, so the limit is checked as bytes appear.
constexpr size_t kInflateChunk = 4096;

}  // namespace

std::string_view Dictionary() { return {kSpdyDictionary, sizeof(kSpdyDictionary) - 1}; }

struct Deflater::Impl {
  z_stream strm{};
  bool broken = false;
  ~Impl() { deflateEnd(&strm); }
};

Deflater::Deflater(int level) : impl_(std::make_unique<Impl>()) {
  // Allocation failure here is fatal like any bad_alloc; a bad level is a caller bug.
  int rc = deflateInit(&impl_->strm, level);
  BERTH_CHECK(rc == Z_OK, fmt::format("deflateInit(level {}) = {}", level, rc));
  const auto dict = Dictionary();
  rc = deflateSetDictionary(&impl_->strm, reinterpret_cast<const Bytef*>(dict.data()),
                            static_cast<uInt>(dict.size()));
  BERTH_CHECK(rc == Z_OK, "deflateSetDictionary");
}
Deflater::~Deflater() = default;
Deflater::Deflater(Deflater&&) noexcept = default;
Deflater& Deflater::operator=(Deflater&&) noexcept = default;

Status Deflater::Compress(std::string_view block, std::string& out) {
  if (impl_->broken) {
    return FailedPrecondition("spdy: header compression stream failed earlier");
  }
  z_stream& s = impl_->strm;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  s.avail_in = static_cast<uInt>(block.size());
  const size_t start = out.size();
  // A sync flush is complete once deflate returns with output space left over.
  do {
    const size_t used = out.size();
    const size_t room = deflateBound(&s, s.avail_in) + 16;
    out.resize(used + room);
    s.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    s.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&s, Z_SYNC_FLUSH);
    out.resize(used + room - s.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      impl_->broken = true;
      out.resize(start);
      return Unknown(fmt::format("spdy: deflate header block: zlib error {}", rc));
    }
    if (s.avail_out != 0) {
      break;
    }
  } while (true);
  return Ok();
}

struct Inflater::Impl {
  z_stream strm{};
  size_t max_block_size = 0;
  bool broken = false;
  ~Impl() { inflateEnd(&strm); }
};

Inflater::Inflater(size_t max_block_size) : impl_(std::make_unique<Impl>()) {
  impl_->max_block_size = max_block_size;
  const int rc = inflateInit(&impl_->strm);
  BERTH_CHECK(rc == Z_OK, fmt::format("inflateInit = {}", rc));
}
Inflater::~Inflater() = default;
Inflater::Inflater(Inflater&&) noexcept = default;
Inflater& Inflater::operator=(Inflater&&) noexcept = default;

Result<std::string> Inflater::Decompress(std::string_view compressed) {
  if (impl_->broken) {
    return FailedPrecondition("spdy: header decompression stream failed earlier");
  }
  z_stream& s = impl_->strm;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  s.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  auto fail = [this](Error e) {
    impl_->broken = true;
    return e;
  };
  // The block is whole once all input is consumed and inflate stopped with output room to spare.
  while (true) {
    const size_t used = out.size();
    const size_t room = std::min(kInflateChunk, impl_->max_block_size + 1 - used);
    out.resize(used + room);
    s.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    s.avail_out = static_cast<uInt>(room);
    int rc = inflate(&s, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      // The first block: the stream names its dictionary; only SPDY's is acceptable.
      if (s.adler != kDictionaryId) {
        return fail(InvalidArgument(
            fmt::format("spdy: header block names dictionary {:#010x}, not SPDY/3's", s.adler)));
      }
      const auto dict = Dictionary();
      if (inflateSetDictionary(&s, reinterpret_cast<const Bytef*>(dict.data()),
                               static_cast<uInt>(dict.size())) != Z_OK) {
        return fail(InvalidArgument("spdy: header block: inflateSetDictionary failed"));
      }
      rc = inflate(&s, Z_SYNC_FLUSH);
    }
    out.resize(used + room - s.avail_out);
    if (rc == Z_STREAM_END) {
      // The peer finished its stream: the next block could not be read.
      return fail(InvalidArgument("spdy: header compression stream ended"));
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return fail(InvalidArgument(fmt::format("spdy: corrupt header block (zlib error {}: {})", rc,
                                              s.msg != nullptr ? s.msg : "")));
    }
    if (out.size() > impl_->max_block_size) {
      return fail(
          Error(Errc::kResourceExhausted,
                fmt::format("spdy: header block inflates beyond {} bytes", impl_->max_block_size)));
    }
    // With output room left (or no progress possible) inflate has used all the input it can.
    if (s.avail_out != 0 || rc == Z_BUF_ERROR) {
      if (s.avail_in != 0) {
        return fail(InvalidArgument("spdy: header block does not decompress"));
      }
      break;
    }
  }
  return out;
}

}  // namespace berth::cri::streaming::spdy
