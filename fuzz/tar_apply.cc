// Layer apply: the input is a layer blob (a tar, or gzip/zstd by its magic) unpacked into a
// fresh directory under a private temp dir, as the overlay upperdir (odd sizes) or a plain
// directory. Nothing may appear beside that directory: an entry that escaped the root traps.
#include <dirent.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/fs.h"
#include "diff/apply_tar.h"
#include "diff/compression.h"
#include "fuzz/fuzz.h"

namespace {

using namespace berth;

class MemoryReader final : public diff::Reader {
 public:
  explicit MemoryReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min(n, data_.size());
    std::memcpy(buf, data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
};

// Names in `dir` other than "." and "..".
int Entries(const std::string& dir) {
  int n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++n;
    }
    ::closedir(d);
  }
  return n;
}

}  // namespace

BERTH_FUZZ_TARGET(tar_apply) {
  // One private parent per process (removed at exit): only `root` may ever be in it.
  static const fs::TempDir base = [] {
    auto dir = fs::TempDir::Create("berth-fuzz-tar-");
    if (!dir) __builtin_trap();
    return std::move(*dir);
  }();
  const std::string root = base.Path() + "/root";
  if (!fs::MkdirAll(root, 0755)) __builtin_trap();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  MemoryReader raw(in);
  diff::ApplyOptions opts{.overlay = size % 2 == 1};
  auto stream = diff::Decompress(diff::DetectCompression(in.substr(0, 8)), raw);
  if (stream) (void)diff::ApplyTar(root, **stream, opts);
  if (Entries(base.Path()) != 1) __builtin_trap();  // something was written beside the root
  if (!fs::RemoveAll(root)) __builtin_trap();
  return 0;
}
