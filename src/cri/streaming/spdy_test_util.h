#pragma once
// Helpers shared by the SPDY tests.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "cri/streaming/spdy_frame.h"

namespace berth::cri::streaming::spdy::testing {

// "80 03 00 01" -> the bytes; spaces are ignored.
inline std::string Hex(std::string_view hex) {
  std::string out;
  int nibbles = 0;
  unsigned value = 0;
  for (char c : hex) {
    if (c == ' ') {
      continue;
    }
    value = value * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    if (++nibbles == 2) {
      out.push_back(static_cast<char>(value));
      nibbles = 0;
      value = 0;
    }
  }
  return out;
}

inline std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    out.push_back(kDigits[static_cast<uint8_t>(c) >> 4]);
    out.push_back(kDigits[static_cast<uint8_t>(c) & 0xF]);
  }
  return out;
}

// Every frame in `bytes`, which must hold whole frames only.
inline std::vector<Frame> ParseAll(FrameParser& parser, std::string_view bytes) {
  parser.Append(bytes);
  std::vector<Frame> frames;
  while (true) {
    auto next = parser.Next();
    EXPECT_TRUE(next.has_value()) << next.error().ToString();
    if (!next || !next->has_value()) {
      break;
    }
    frames.push_back(std::move(**next));
  }
  EXPECT_EQ(parser.Buffered(), 0u);
  return frames;
}

// The first error the parser reports on `bytes`, or Ok when they parse.
inline Status ParseError(FrameParser& parser, std::string_view bytes) {
  parser.Append(bytes);
  while (true) {
    auto next = parser.Next();
    if (!next) {
      return std::move(next).error();
    }
    if (!next->has_value()) {
      return Ok();
    }
  }
}

}  // namespace berth::cri::streaming::spdy::testing
