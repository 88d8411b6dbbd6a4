#include "cri/streaming/spdy_zlib.h"

#include <zlib.h>

#include <gtest/gtest.h>

#include <string>

#include "cri/streaming/spdy_test_util.h"

namespace berth::cri::streaming::spdy {
namespace {

using testing::Hex;
using testing::ToHex;

// A raw zlib stream of `data` with `dict` (none when empty), flushed with `flush`.
std::string RawDeflate(std::string_view data, std::string_view dict, int flush) {
  z_stream s{};
  EXPECT_EQ(deflateInit(&s, Z_DEFAULT_COMPRESSION), Z_OK);
  if (!dict.empty()) {
    EXPECT_EQ(deflateSetDictionary(&s, reinterpret_cast<const Bytef*>(dict.data()),
                                   static_cast<uInt>(dict.size())),
              Z_OK);
  }
  std::string out(deflateBound(&s, data.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&s, flush);
  EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END) << rc;
  out.resize(out.size() - s.avail_out);
  deflateEnd(&s);
  return out;
}

TEST(SpdyDictionary, IsTheSpdy3Dictionary) {
  const auto dict = Dictionary();
  EXPECT_EQ(dict.size(), 1423u);
  EXPECT_EQ(adler32(1, reinterpret_cast<const Bytef*>(dict.data()), static_cast<uInt>(dict.size())),
            kDictionaryId);
  EXPECT_EQ(kDictionaryId, 0xE3C6A7C2u);
  EXPECT_EQ(dict.substr(0, 11), std::string_view("\0\0\0\7options", 11));
  EXPECT_TRUE(dict.ends_with("enq=0."));
}

TEST(SpdyDeflater, FirstEmptyBlockAtDefaultLevel) {
  // The empty header block is its pair count: 0 (spdystream's SYN_REPLY).
  Deflater d(Z_DEFAULT_COMPRESSION);
  std::string out;
  ASSERT_TRUE(d.Compress(Hex("00000000"), out));
  EXPECT_EQ(ToHex(out), "78 bb e3 c6 a7 c2 02 a6 23 06 00 00 00 00 ff ff");
}

TEST(SpdyDeflater, Level9NamesTheDictionaryAndSyncFlushes) {
  Deflater d;  // spdystream's level
  std::string out;
  ASSERT_TRUE(d.Compress(Hex("00000001 0000000a") + "streamtype" + Hex("00000005") + "error", out));
  EXPECT_TRUE(out.starts_with(Hex("78 f9 e3 c6 a7 c2"))) << ToHex(out);
  EXPECT_TRUE(out.ends_with(Hex("00 00 ff ff"))) << ToHex(out);
  // Later blocks continue the stream: no second zlib header.
  std::string second;
  ASSERT_TRUE(d.Compress("abc", second));
  EXPECT_FALSE(second.starts_with(Hex("78"))) << ToHex(second);
  EXPECT_TRUE(second.ends_with(Hex("00 00 ff ff"))) << ToHex(second);
}

TEST(SpdyInflater, RoundTripsManyBlocksThroughOneStream) {
  Deflater d;
  Inflater in;
  for (int i = 0; i < 200; ++i) {
    // Repeats across blocks, so later blocks refer back into earlier ones.
    std::string block = "streamtype: " + std::string(i % 3 == 0 ? "stdout" : "stderr") +
                        " port: " + std::to_string(i) + std::string(static_cast<size_t>(i), 'x');
    std::string compressed;
    ASSERT_TRUE(d.Compress(block, compressed));
    auto got = in.Decompress(compressed);
    ASSERT_TRUE(got) << got.error().ToString();
    EXPECT_EQ(*got, block) << i;
  }
}

TEST(SpdyInflater, DecompressesZlibsOwnOutput) {
  const std::string block = "hello spdy";
  auto got = Inflater().Decompress(RawDeflate(block, Dictionary(), Z_SYNC_FLUSH));
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(*got, block);
}

TEST(SpdyInflater, RefusesAnotherDictionary) {
  auto got = Inflater().Decompress(RawDeflate("hello", "another dictionary", Z_SYNC_FLUSH));
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().Is(Errc::kInvalidArgument)) << got.error().ToString();
}

TEST(SpdyInflater, RefusesAFinishedStream) {
  auto got = Inflater().Decompress(RawDeflate("hello", Dictionary(), Z_FINISH));
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().Is(Errc::kInvalidArgument)) << got.error().ToString();
}

TEST(SpdyInflater, RefusesGarbageAndStaysFailed) {
  Inflater in;
  auto got = in.Decompress("this is not zlib at all");
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().Is(Errc::kInvalidArgument)) << got.error().ToString();
  // Its state is gone: even a good block is refused now.
  std::string good;
  ASSERT_TRUE(Deflater().Compress("x", good));
  EXPECT_FALSE(in.Decompress(good));
}

TEST(SpdyInflater, CompressionBombIsAnError) {
  Deflater d;
  std::string bomb;
  ASSERT_TRUE(d.Compress(std::string(16 * 1024 * 1024, '\0'), bomb));
  ASSERT_LT(bomb.size(), 64u * 1024);  // 16 MiB in a few KiB
  auto got = Inflater().Decompress(bomb);
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().Is(Errc::kResourceExhausted)) << got.error().ToString();
}

TEST(SpdyInflater, LimitIsInclusive) {
  for (size_t size : {size_t{1000}, size_t{4096}, size_t{8192}}) {
    Deflater d;
    std::string exact;
    std::string over;
    ASSERT_TRUE(d.Compress(std::string(size, 'a'), exact));
    ASSERT_TRUE(d.Compress(std::string(size + 1, 'b'), over));
    Inflater in(size);
    auto got = in.Decompress(exact);
    ASSERT_TRUE(got) << got.error().ToString();
    EXPECT_EQ(got->size(), size);
    got = in.Decompress(over);
    ASSERT_FALSE(got);
    EXPECT_TRUE(got.error().Is(Errc::kResourceExhausted));
  }
}

}  // namespace
}  // namespace berth::cri::streaming::spdy
