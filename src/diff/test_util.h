#pragma once
// Test helpers for diff/: tar fixtures built in code with libarchive, compressors, a content
// store on a temp root (with labels), scope guards for mounts, and tree inspection.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/mount.h"
#include "content/local/store.h"
#include "diff/walking.h"

namespace berth::diff::test {

struct TarEntry {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;  // regular files: the (logical) content
  std::string link;  // symlink target, or hardlink target when `hardlink`
  bool hardlink = false;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 1600000000;
  std::optional<int64_t> atime;
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::vector<std::pair<int64_t, int64_t>> sparse;  // (offset, length) data regions
};

inline TarEntry Dir(std::string name, mode_t perm = 0755) {
  return {.name = std::move(name), .type = AE_IFDIR, .perm = perm};
}
inline TarEntry File(std::string name, std::string data, mode_t perm = 0644) {
  return {.name = std::move(name), .perm = perm, .data = std::move(data)};
}
inline TarEntry Symlink(std::string name, std::string target) {
  return {.name = std::move(name), .type = AE_IFLNK, .perm = 0777, .link = std::move(target)};
}
inline TarEntry Hardlink(std::string name, std::string target, mode_t perm = 0644) {
  return {.name = std::move(name), .perm = perm, .link = std::move(target), .hardlink = true};
}
inline TarEntry Whiteout(std::string name) { return File(std::move(name), "", 0); }

// kPax: ustar unless a field needs PAX records (as Go writes); kPaxFull: PAX records always
// (atime, sparse maps).
enum class TarFormat { kPax, kPaxFull, kGnu, kUstar };

inline la_ssize_t AppendCallback(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// A tar stream as Go/containerd would write it (no block padding after the end marker).
inline std::string BuildTar(const std::vector<TarEntry>& entries,
                            TarFormat format = TarFormat::kPax) {
  std::string out;
  struct archive* a = archive_write_new();
  switch (format) {
    case TarFormat::kPax:
      archive_write_set_format_pax_restricted(a);
      break;
    case TarFormat::kPaxFull:
      archive_write_set_format_pax(a);
      break;
    case TarFormat::kGnu:
      archive_write_set_format_gnutar(a);
      break;
    case TarFormat::kUstar:
      archive_write_set_format_ustar(a);
      break;
  }
  if (format == TarFormat::kPax || format == TarFormat::kPaxFull) {
    archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY");
  }
  archive_write_set_bytes_per_block(a, 0);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendCallback, nullptr), ARCHIVE_OK);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_filetype(e, t.type);
    archive_entry_set_perm(e, t.perm);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    if (t.atime) archive_entry_set_atime(e, *t.atime, 0);
    if (t.type == AE_IFLNK) archive_entry_set_symlink(e, t.link.c_str());
    if (t.hardlink) archive_entry_set_hardlink(e, t.link.c_str());
    if (t.type == AE_IFCHR || t.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e, t.dev_major);
      archive_entry_set_rdevminor(e, t.dev_minor);
    }
    for (const auto& [k, v] : t.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    for (const auto& [off, len] : t.sparse) archive_entry_sparse_add_entry(e, off, len);
    bool has_data = t.type == AE_IFREG && !t.hardlink;
    archive_entry_set_size(e, has_data ? static_cast<int64_t>(t.data.size()) : 0);
    EXPECT_GE(archive_write_header(a, e), ARCHIVE_WARN) << archive_error_string(a);
    if (has_data && !t.data.empty()) {
      EXPECT_EQ(archive_write_data(a, t.data.data(), t.data.size()),
                static_cast<la_ssize_t>(t.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

// Raw tar pieces for what libarchive does not write: a ustar header block, PAX records.
inline std::string TarHeader(const std::string& name, char type, size_t size, mode_t mode = 0644) {
  std::string hdr(512, '\0');
  std::memcpy(hdr.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(hdr.data() + 100, 8, "%07o", static_cast<unsigned>(mode));
  std::snprintf(hdr.data() + 108, 8, "%07o", 0u);
  std::snprintf(hdr.data() + 116, 8, "%07o", 0u);
  std::snprintf(hdr.data() + 124, 12, "%011zo", size);
  std::snprintf(hdr.data() + 136, 12, "%011o", 1600000000u);
  hdr[156] = type;
  std::memcpy(hdr.data() + 257,
              "ustar\0"
              "00",
              8);
  std::memset(hdr.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : hdr) sum += c;
  std::snprintf(hdr.data() + 148, 8, "%06o", sum);
  return hdr;
}

inline std::string Pad512(std::string s) {
  s.resize((s.size() + 511) / 512 * 512, '\0');
  return s;
}

inline std::string PaxRecord(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

// A GNU PAX 1.0 sparse file (what `tar --sparse --format=posix` writes): `regions` are
// (offset, data) pairs of a file of `size` bytes, the rest holes. No end-of-archive marker.
inline std::string SparseEntry(const std::string& name, size_t size,
                               const std::vector<std::pair<size_t, std::string>>& regions) {
  std::string records = PaxRecord("GNU.sparse.major", "1") + PaxRecord("GNU.sparse.minor", "0") +
                        PaxRecord("GNU.sparse.name", name) +
                        PaxRecord("GNU.sparse.realsize", std::to_string(size));
  std::string map = std::to_string(regions.size()) + "\n";
  std::string data;
  for (const auto& [off, bytes] : regions) {
    map += std::to_string(off) + "\n" + std::to_string(bytes.size()) + "\n";
    data += bytes;
  }
  std::string body = Pad512(map) + data;
  return TarHeader("PaxHeaders/" + name, 'x', records.size()) + Pad512(records) +
         TarHeader("GNUSparseFile.0/" + name, '0', body.size()) + Pad512(body);
}

inline std::string Gzip(const std::string& in, int members = 1) {
  std::string out;
  size_t step = (in.size() + static_cast<size_t>(members) - 1) / static_cast<size_t>(members);
  for (size_t off = 0; off < in.size() || (off == 0 && in.empty());
       off += std::max<size_t>(step, 1)) {
    z_stream z{};
    deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    std::string part = in.substr(off, step);
    std::string buf(compressBound(part.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(part.data());
    z.avail_in = static_cast<uInt>(part.size());
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.append(buf.data(), z.total_out);
    deflateEnd(&z);
    if (in.empty()) break;
  }
  return out;
}

inline std::string Gunzip(const std::string& in) {
  z_stream z{};
  inflateInit2(&z, 16 + MAX_WBITS);
  std::string out;
  char buf[65536];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int ret = Z_OK;
  while (ret == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    ret = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  EXPECT_EQ(ret, Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

inline std::string Zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// Unmounts `path` when destroyed, whatever the test did.
class MountGuard {
 public:
  explicit MountGuard(std::string path) : path_(std::move(path)) {}
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  ~MountGuard() { (void)mount::UnmountAll(path_); }

 private:
  std::string path_;
};

// LocalStore plus the labels a metadata store would keep (Compare commits and reads them).
class LabelStore final : public content::Store {
 public:
  explicit LabelStore(std::unique_ptr<content::LocalStore> s) : s_(std::move(s)) {}
  Result<content::Info> Info(const Context& ctx, const Digest& dgst) override {
    BERTH_ASSIGN_OR_RETURN(auto info, s_->Info(ctx, dgst));
    info.labels = labels_[dgst];
    return info;
  }
  Result<content::Info> Update(const Context& ctx, const content::Info& info,
                               const std::vector<std::string>&) override {
    labels_[info.digest] = info.labels;
    return Info(ctx, info.digest);
  }
  berth::Status Walk(const Context& ctx,
                     const std::function<berth::Status(const content::Info&)>& fn,
                     const std::vector<std::string>& filters) override {
    return s_->Walk(ctx, fn, filters);
  }
  berth::Status Delete(const Context& ctx, const Digest& d) override { return s_->Delete(ctx, d); }
  Result<std::unique_ptr<content::ReaderAt>> ReaderAt(const Context& ctx,
                                                      const Descriptor& d) override {
    return s_->ReaderAt(ctx, d);
  }
  Result<content::Status> Status(const Context& ctx, const std::string& ref) override {
    return s_->Status(ctx, ref);
  }
  Result<std::vector<content::Status>> ListStatuses(const Context& ctx,
                                                    const std::vector<std::string>& f) override {
    return s_->ListStatuses(ctx, f);
  }
  berth::Status Abort(const Context& ctx, const std::string& ref) override {
    return s_->Abort(ctx, ref);
  }
  Result<std::unique_ptr<content::Writer>> Writer(const Context& ctx,
                                                  const content::WriterOptions& o) override;

  std::map<Digest, Labels> labels_;

 private:
  std::unique_ptr<content::LocalStore> s_;
};

// Records the labels of a commit the way the metadata store does.
class LabelWriter final : public content::Writer {
 public:
  LabelWriter(std::unique_ptr<content::Writer> w, LabelStore& s) : w_(std::move(w)), s_(s) {}
  berth::Status Write(std::string_view d) override { return w_->Write(d); }
  berth::Digest Digest() const override { return w_->Digest(); }
  berth::Status Commit(int64_t size, const berth::Digest& expected, const Labels& labels) override {
    berth::Digest d = w_->Digest();
    auto s = w_->Commit(size, expected, labels);
    if (s || s.error().Is(Errc::kAlreadyExists)) s_.labels_[d] = labels;
    return s;
  }
  Result<content::Status> Status() const override { return w_->Status(); }
  berth::Status Truncate(int64_t size) override { return w_->Truncate(size); }
  berth::Status Close() override { return w_->Close(); }

 private:
  std::unique_ptr<content::Writer> w_;
  LabelStore& s_;
};

inline Result<std::unique_ptr<content::Writer>> LabelStore::Writer(
    const Context& ctx, const content::WriterOptions& o) {
  BERTH_ASSIGN_OR_RETURN(auto w, s_->Writer(ctx, o));
  return std::unique_ptr<content::Writer>(std::make_unique<LabelWriter>(std::move(w), *this));
}

// A temp root with a content store, a differ and scratch directories.
class DiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "diff tests need root (mounts, device nodes, chown)";
    auto tmp = fs::TempDir::Create("berth-diff-test-");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    auto local = content::LocalStore::Open(Path("content"));
    ASSERT_TRUE(local) << local.error().ToString();
    store_ = std::make_unique<LabelStore>(std::move(*local));
    differ_ = std::make_unique<WalkingDiff>(*store_, Path("tmpmounts"));
  }

  std::string Path(const std::string& rel) const { return tmp_->Path() + "/" + rel; }
  std::string MakeDir(const std::string& rel, mode_t mode = 0755) {
    std::string p = Path(rel);
    EXPECT_TRUE(fs::MkdirAll(p, mode));
    return p;
  }

  // Stores `blob` and returns its descriptor with `media_type`.
  Descriptor Put(const std::string& blob, const std::string& media_type) {
    Digest d = Digest::FromBytes(blob);
    auto w = store_->Writer(ctx_, {.ref = "put-" + d.String()});
    EXPECT_TRUE(w) << w.error().ToString();
    EXPECT_TRUE((*w)->Write(blob));
    auto c = (*w)->Commit(static_cast<int64_t>(blob.size()), d, {});
    EXPECT_TRUE(c || c.error().Is(Errc::kAlreadyExists));
    return {.media_type = media_type, .digest = d, .size = static_cast<int64_t>(blob.size())};
  }

  Result<Descriptor> ApplyBind(const std::string& tar_blob, const std::string& media_type,
                               const std::string& dir) {
    return differ_->Apply(ctx_, Put(tar_blob, media_type),
                          {{.type = "bind", .source = dir, .options = {"rw", "rbind"}}});
  }

  Context ctx_{.ns = "test"};
  std::optional<fs::TempDir> tmp_;
  std::unique_ptr<LabelStore> store_;
  std::unique_ptr<WalkingDiff> differ_;
};

inline bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

inline struct stat Lstat(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

inline std::string ReadAll(const std::string& p) {
  auto r = fs::ReadFile(p);
  EXPECT_TRUE(r) << p;
  return r ? *r : "";
}

inline std::string XattrOf(const std::string& p, const std::string& name) {
  char buf[4096];
  ssize_t n = ::lgetxattr(p.c_str(), name.c_str(), buf, sizeof buf);
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

inline void WriteFile(const std::string& p, const std::string& data, mode_t mode = 0644) {
  ASSERT_TRUE(fs::WriteFileAtomic(p, data, mode)) << p;
}

inline std::string Readlink(const std::string& p) {
  char buf[4096];
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

inline std::vector<std::string> ReadDirNamesOf(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// "path type mode uid:gid size mtime [target|content-digest|rdev] [cap]" per entry, sorted: two
// trees with the same listing are the same tree.
std::vector<std::string> Describe(const std::string& root);

}  // namespace berth::diff::test
