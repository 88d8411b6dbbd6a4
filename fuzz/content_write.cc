// One Content.Write stream: the input is a sequence of WriteContentRequest messages, each a
// 2-byte little-endian length and the message's bytes, played in order against a fresh local
// content store (stat, write at offsets, truncate, commit with expected digests and totals) as
// the service plays a client's stream. A committed blob must hold exactly the digest it was
// committed under.
#include <string>
#include <string_view>

#include "common/fs.h"
#include "content/local/store.h"
#include "fuzz/fuzz.h"
#include "services/content_write.h"

BERTH_FUZZ_TARGET(content_write) {
  using namespace berth;
  namespace api = containerd::services::content::v1;
  // One private directory per process, removed at exit.
  static const fs::TempDir base = [] {
    auto dir = fs::TempDir::Create("berth-fuzz-content-");
    if (!dir) __builtin_trap();
    return std::move(*dir);
  }();
  const std::string root = base.Path() + "/store";
  {
    auto store = content::LocalStore::Open(root);
    if (!store) __builtin_trap();
    services::WriteSession session(**store, Context{.ns = "fuzz"});
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (in.size() >= 2) {
      size_t n =
          static_cast<uint8_t>(in[0]) | (static_cast<size_t>(static_cast<uint8_t>(in[1])) << 8);
      in.remove_prefix(2);
      n = std::min(n, in.size());
      api::WriteContentRequest req;
      if (!req.ParseFromArray(in.data(), static_cast<int>(n))) break;
      in.remove_prefix(n);
      api::WriteContentResponse resp;
      if (!session.Step(req, &resp)) break;  // the stream ends at its first error
      if (req.action() == api::COMMIT) {
        // What was committed reads back under its digest, with that digest.
        auto dgst = Digest::Parse(resp.digest());
        if (!dgst) __builtin_trap();
        auto reader = (*store)->ReaderAt(Context{.ns = "fuzz"}, {.digest = *dgst});
        if (!reader) __builtin_trap();
        std::string blob(static_cast<size_t>((*reader)->Size()), '\0');
        auto got = (*reader)->ReadAt(blob.data(), blob.size(), 0);
        if (!got || *got != blob.size() || Digest::FromBytes(blob) != *dgst) __builtin_trap();
      }
    }
  }
  if (!fs::RemoveAll(root)) __builtin_trap();
  return 0;
}
