#pragma once
// Shared fixture of the local content store tests: a LocalStore on a fresh temp root, removed
// after each test, plus helpers to write, read and inspect blobs and ingests.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "content/local/store.h"

namespace berth::content::test {

inline std::string MakeContent(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) {
    c = static_cast<char>(gen() & 0xff);
  }
  return out;
}

inline bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return names;
  while (struct dirent* de = ::readdir(d.get())) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline void SetMtime(const std::string& path, Timestamp t) {
  int64_t ns = UnixNanos(t);
  struct timespec times[2] = {{ns / 1'000'000'000, ns % 1'000'000'000},
                              {ns / 1'000'000'000, ns % 1'000'000'000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("content-test-");
    ASSERT_TRUE(dir) << dir.error().ToString();
    tmp_ = std::make_unique<fs::TempDir>(std::move(*dir));
    root_ = tmp_->Path() + "/io.containerd.content.v1.content";
    Reopen();
  }

  void Reopen() {
    store_.reset();
    auto store = LocalStore::Open(root_);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  std::unique_ptr<Writer> OpenWriter(const std::string& ref, int64_t total = 0,
                                     const Digest& expected = {}) {
    auto w = store_->Writer(ctx_, {.ref = ref, .desc = {.digest = expected, .size = total}});
    EXPECT_TRUE(w) << w.error().ToString();
    return w ? std::move(*w) : nullptr;
  }

  Digest Commit(const std::string& ref, const std::string& data) {
    auto w = OpenWriter(ref);
    if (!w) return {};
    EXPECT_TRUE(w->Write(data));
    auto st = w->Commit(static_cast<int64_t>(data.size()), Digest::FromBytes(data), {});
    EXPECT_TRUE(st) << st.error().ToString();
    return Digest::FromBytes(data);
  }

  std::string ReadBlob(const Digest& d) {
    auto ra = store_->ReaderAt(ctx_, {.digest = d});
    EXPECT_TRUE(ra) << ra.error().ToString();
    if (!ra) return {};
    std::string out(static_cast<size_t>((*ra)->Size()), '\0');
    auto n = (*ra)->ReadAt(out.data(), out.size(), 0);
    EXPECT_TRUE(n);
    out.resize(n ? *n : 0);
    return out;
  }

  std::string IngestPath(const std::string& ref) {
    return store_->Root() + "/ingest/" + std::string(Digest::FromBytes(ref).Encoded());
  }
  std::string BlobPath(const Digest& d) {
    return store_->Root() + "/blobs/sha256/" + std::string(d.Encoded());
  }

  std::vector<Digest> WalkAll(const std::vector<std::string>& filters = {}) {
    std::vector<Digest> out;
    auto st = store_->Walk(
        ctx_,
        [&](const Info& info) {
          out.push_back(info.digest);
          return Ok();
        },
        filters);
    EXPECT_TRUE(st) << st.error().ToString();
    return out;
  }

  Context ctx_;
  std::unique_ptr<fs::TempDir> tmp_;
  std::string root_;
  std::unique_ptr<LocalStore> store_;
};

}  // namespace berth::content::test
