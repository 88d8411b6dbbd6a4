#include "cri/io/cri_log.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "cri/io/test_util.h"

namespace berth::cri::io {
namespace {

constexpr int64_t kT = 1'475'713'029'669'794'202;  // 2016-10-06T00:17:09.669794202Z
const char* const kTs = "2016-10-06T00:17:09.669794202Z";

TimeSource Fixed(int64_t ns = kT) {
  return [ns] { return FromUnixNanos(ns); };
}

// Feeds `chunks`, then (optionally) flushes; returns the records without their '\n'.
std::vector<std::string> Records(const std::vector<std::string>& chunks, int64_t max,
                                 bool flush = true, StreamType s = StreamType::kStdout) {
  CriLineEncoder enc(s, max, Fixed());
  std::string out;
  for (const auto& c : chunks) {
    enc.Encode(c, out);
  }
  if (flush) {
    enc.Flush(out);
  }
  EXPECT_TRUE(out.empty() || out.back() == '\n');
  auto lines = testing::SplitLines(out);
  lines.pop_back();  // after the last '\n'
  return lines;
}

std::string R(char tag, const std::string& content, const char* stream = "stdout") {
  return std::string(kTs) + " " + stream + " " + tag + " " + content;
}

TEST(CriLogTest, TimestampIsGoRfc3339NanoUtc) {
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(kT)), kTs);
  // Trailing zeros of the fraction dropped; none at all on a whole second.
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(1'475'713'029'500'000'000)), "2016-10-06T00:17:09.5Z");
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(1'475'713'029'000'000'010)),
            "2016-10-06T00:17:09.00000001Z");
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(1'475'713'029'000'000'000)), "2016-10-06T00:17:09Z");

  CriLineEncoder enc(StreamType::kStderr, 0, Fixed(1'475'713'029'000'000'000));
  std::string out;
  enc.Encode("x\n", out);
  EXPECT_EQ(out, "2016-10-06T00:17:09Z stderr F x\n");
}

TEST(CriLogTest, DefaultClockIsNowInUtc) {
  CriLineEncoder enc(StreamType::kStdout, kDefaultMaxLineSize);
  std::string out;
  enc.Encode("hello\n", out);
  EXPECT_TRUE(std::regex_match(
      out, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z stdout F hello\n)")))
      << out;
}

TEST(CriLogTest, WholeLinesAreF) {
  EXPECT_EQ(Records({"a\nbc\n"}, 16), (std::vector<std::string>{R('F', "a"), R('F', "bc")}));
  EXPECT_EQ(Records({"e\n"}, 16, true, StreamType::kStderr),
            (std::vector<std::string>{R('F', "e", "stderr")}));
}

TEST(CriLogTest, EmptyLinesAreEmptyF) {
  EXPECT_EQ(Records({"\n\n"}, 16), (std::vector<std::string>{R('F', ""), R('F', "")}));
  EXPECT_EQ(Records({"\r\n"}, 16), (std::vector<std::string>{R('F', "")}));
}

TEST(CriLogTest, CrlfDropsTheCr) {
  EXPECT_EQ(Records({"a\r\nb\r\r\n"}, 16), (std::vector<std::string>{R('F', "a"), R('F', "b\r")}));
  // A lone '\r' inside a line stays.
  EXPECT_EQ(Records({"a\rb\n"}, 16), (std::vector<std::string>{R('F', "a\rb")}));
  // "\r\n" split across chunks.
  EXPECT_EQ(Records({"ab\r", "\n"}, 16), (std::vector<std::string>{R('F', "ab")}));
}

TEST(CriLogTest, ExactlyTheLimitIsOneF) {
  EXPECT_EQ(Records({"abcd\n"}, 4), (std::vector<std::string>{R('F', "abcd")}));
  // Even when it arrives in pieces, and with CRLF.
  EXPECT_EQ(Records({"ab", "cd", "\n"}, 4), (std::vector<std::string>{R('F', "abcd")}));
  EXPECT_EQ(Records({"abcd\r", "\n"}, 4), (std::vector<std::string>{R('F', "abcd")}));
  EXPECT_EQ(Records({"abcd", "\r\n"}, 4), (std::vector<std::string>{R('F', "abcd")}));
}

TEST(CriLogTest, LimitPlusOneIsPThenF) {
  EXPECT_EQ(Records({"abcde\n"}, 4), (std::vector<std::string>{R('P', "abcd"), R('F', "e")}));
  EXPECT_EQ(Records({"abcd\rX\n"}, 4), (std::vector<std::string>{R('P', "abcd"), R('F', "\rX")}));
}

TEST(CriLogTest, LongLinesSplitIntoExactPiecesThenF) {
  EXPECT_EQ(Records({"abcdefgh\n"}, 4), (std::vector<std::string>{R('P', "abcd"), R('F', "efgh")}));
  EXPECT_EQ(Records({"abcdefghij\n"}, 4),
            (std::vector<std::string>{R('P', "abcd"), R('P', "efgh"), R('F', "ij")}));
  // The default limit.
  std::string big(kDefaultMaxLineSize * 2 + 5, 'x');
  auto recs = Records({big + "\n"}, kDefaultMaxLineSize);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0], R('P', std::string(kDefaultMaxLineSize, 'x')));
  EXPECT_EQ(recs[1], R('P', std::string(kDefaultMaxLineSize, 'x')));
  EXPECT_EQ(recs[2], R('F', "xxxxx"));
}

TEST(CriLogTest, PiecesAreEmittedBeforeTheLineEnds) {
  CriLineEncoder enc(StreamType::kStdout, 4, Fixed());
  std::string out;
  enc.Encode("abcdef", out);
  EXPECT_EQ(out, R('P', "abcd") + "\n");
  EXPECT_EQ(enc.Buffered(), 2u);
  out.clear();
  enc.Encode("g\n", out);
  EXPECT_EQ(out, R('F', "efg") + "\n");
  EXPECT_EQ(enc.Buffered(), 0u);
}

TEST(CriLogTest, NonPositiveLimitIsUnlimited) {
  std::string big(100'000, 'y');
  for (int64_t limit : {0, -1}) {
    EXPECT_EQ(Records({big.substr(0, 50'000), big.substr(50'000), "\n"}, limit),
              (std::vector<std::string>{R('F', big)}));
  }
}

TEST(CriLogTest, PartialAtEndIsFlushedAsP) {
  EXPECT_EQ(Records({"a\nbc"}, 16), (std::vector<std::string>{R('F', "a"), R('P', "bc")}));
  // Nothing buffered: nothing flushed.
  EXPECT_EQ(Records({"a\n"}, 16), (std::vector<std::string>{R('F', "a")}));
  EXPECT_TRUE(Records({}, 16).empty());
  // Not flushed: stays buffered.
  EXPECT_EQ(Records({"a\nbc"}, 16, false), (std::vector<std::string>{R('F', "a")}));
  // At the end a trailing '\r' is content, and the limit still splits.
  EXPECT_EQ(Records({"ab\r"}, 16), (std::vector<std::string>{R('P', "ab\r")}));
  EXPECT_EQ(Records({"abcd\r"}, 4), (std::vector<std::string>{R('P', "abcd"), R('P', "\r")}));
  EXPECT_EQ(Records({"abcdef"}, 4), (std::vector<std::string>{R('P', "abcd"), R('P', "ef")}));
  EXPECT_EQ(Records({"abcd"}, 4), (std::vector<std::string>{R('P', "abcd")}));
}

TEST(CriLogTest, ManyLinesInOneChunk) {
  std::string chunk;
  std::vector<std::string> want;
  for (int i = 0; i < 1000; ++i) {
    chunk += "line " + std::to_string(i) + "\n";
    want.push_back(R('F', "line " + std::to_string(i)));
  }
  EXPECT_EQ(Records({chunk}, 16), want);
}

TEST(CriLogTest, LineAcrossManyChunks) {
  std::vector<std::string> chunks;
  std::string line;
  for (int i = 0; i < 500; ++i) {
    chunks.emplace_back(1, static_cast<char>('a' + i % 26));
    line += chunks.back();
  }
  chunks.emplace_back("\n");
  // Unlimited: one F. Limit 64: seven P of 64 bytes, then F with the last 52.
  EXPECT_EQ(Records(chunks, 0), (std::vector<std::string>{R('F', line)}));
  auto recs = Records(chunks, 64);
  ASSERT_EQ(recs.size(), 8u);
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(recs[i], R('P', line.substr(i * 64, 64)));
  }
  EXPECT_EQ(recs[7], R('F', line.substr(448)));
}

TEST(CriLogTest, EachRecordTakesItsOwnTime) {
  int64_t t = 1'000'000'000;
  CriLineEncoder enc(StreamType::kStdout, 0, [&t] { return FromUnixNanos(t++); });
  std::string out;
  enc.Encode("a\nb\n", out);
  EXPECT_EQ(out,
            "1970-01-01T00:00:01Z stdout F a\n"
            "1970-01-01T00:00:01.000000001Z stdout F b\n");
}

}  // namespace
}  // namespace berth::cri::io
