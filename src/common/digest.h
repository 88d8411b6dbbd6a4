#pragma once
// Content digests ("sha256:<64 lowercase hex>") and incremental SHA-256 (OpenSSL).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth {

class Digest {
 public:
  Digest() = default;  // empty: "no digest"
  // Validates "alg:hex": only sha256 (64 lowercase hex) is accepted, as containerd's default
  // algorithm; anything else is InvalidArgument naming the text.
  static Result<Digest> Parse(std::string_view text);
  static Digest FromBytes(std::string_view data);

  bool Empty() const { return text_.empty(); }
  const std::string& String() const { return text_; }
  std::string_view Algorithm() const;
  std::string_view Encoded() const;  // the hex part

  bool operator==(const Digest& o) const { return text_ == o.text_; }
  bool operator!=(const Digest& o) const { return text_ != o.text_; }
  bool operator<(const Digest& o) const { return text_ < o.text_; }

 private:
  explicit Digest(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  void Update(const void* data, size_t n);
  // The digest of everything so far (does not finish the hasher).
  Digest Current() const;
  void Reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth
