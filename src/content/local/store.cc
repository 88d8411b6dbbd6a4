#include "content/local/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include <fmt/format.h>

#include "common/filters.h"
#include "common/fs.h"
#include "common/log.h"
#include "content/local/ingest.h"
#include "content/local/locks.h"
#include "content/local/writer.h"

namespace berth::content {
namespace {

using local::FromTimespec;

struct DirEntry {
  std::string name;
  bool is_dir = false;
};

// The entries of `path` but "." and "..", sorted by name. NotFound if `path` is missing.
Result<std::vector<DirEntry>> ListDir(const std::string& path) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) {
    return ErrnoError(errno, "open directory " + path);
  }
  std::vector<DirEntry> out;
  for (;;) {
    errno = 0;  // readdir reports errors only through errno
    struct dirent* de = ::readdir(dir.get());
    if (de == nullptr) {
      if (errno != 0) {
        return ErrnoError(errno, "read directory " + path);
      }
      break;
    }
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir = ::fstatat(::dirfd(dir.get()), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISDIR(st.st_mode);
    }
    out.push_back({std::string(name), is_dir});
  }
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

Info InfoFromStat(const Digest& dgst, const struct stat& st) {
  return content::Info{
      .digest = dgst,
      .size = static_cast<int64_t>(st.st_size),
      .created_at = FromTimespec(st.st_mtim),
      .updated_at = FromTimespec(st.st_atim),
  };
}

// Random access to one blob through its own fd: pread needs no shared offset, so one reader
// serves many threads.
class LocalReaderAt final : public content::ReaderAt {
 public:
  LocalReaderAt(fs::UniqueFd fd, int64_t size) : fd_(std::move(fd)), size_(size) {}

  Result<size_t> ReadAt(void* buf, size_t n, int64_t offset) override {
    if (offset < 0) {
      return InvalidArgument(fmt::format("read at negative offset {}", offset));
    }
    auto* p = static_cast<char*>(buf);
    size_t done = 0;
    while (done < n) {
      ssize_t got = ::pread(fd_.Get(), p + done, n - done, offset + static_cast<int64_t>(done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "read blob");
      }
      if (got == 0) break;  // end of the blob
      done += static_cast<size_t>(got);
    }
    return done;
  }

  int64_t Size() const override { return size_; }

 private:
  fs::UniqueFd fd_;
  int64_t size_;
};

}  // namespace

LocalStore::LocalStore(std::string root)
    : root_(std::move(root)),
      ingest_root_(root_ + "/ingest"),
      blobs_dir_(root_ + "/blobs/sha256") {}

Result<std::unique_ptr<LocalStore>> LocalStore::Open(const std::string& root) {
  if (root.empty()) {
    return InvalidArgument("content store root must not be empty");
  }
  BERTH_TRY(fs::MkdirAll(root + "/ingest", 0755));
  BERTH_TRY(fs::MkdirAll(root + "/blobs/sha256", 0755));
  // Canonical, so the ref locks (keyed by ingest path) agree however the root was spelled.
  std::unique_ptr<char, void (*)(void*)> real(::realpath(root.c_str(), nullptr), ::free);
  if (!real) {
    return ErrnoError(errno, "resolve content store root " + root);
  }
  std::unique_ptr<LocalStore> store(new LocalStore(real.get()));
  store->RemoveLeftovers();
  return store;
}

void LocalStore::RemoveLeftovers() {
  auto entries = ListDir(ingest_root_);
  if (!entries) {
    log::L().WithError(entries.error()).Warn("cannot list ingests to clean up");
    return;
  }
  for (const DirEntry& e : *entries) {
    if (!e.is_dir) continue;
    std::string dir = ingest_root_ + "/" + e.name;
    auto lock = local::RefLock::TryAcquire(dir, e.name);
    if (!lock) continue;  // a writer (of another store on this root) is using it
    auto files = ListDir(dir);
    if (!files) continue;
    bool has_data = false;
    bool has_ref = false;
    for (const DirEntry& f : *files) {
      if (local::IsTempName(f.name)) {
        std::string path = dir + "/" + f.name;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          log::L().With("path", path).Warn("cannot remove leftover temporary file");
        }
      }
      has_data = has_data || f.name == local::kDataFile;
      has_ref = has_ref || f.name == local::kRefFile;
    }
    if (!has_data || !has_ref) {
      log::L().With("path", dir).Info("removing incomplete ingest");
      if (auto st = fs::RemoveAll(dir); !st) {
        log::L().With("path", dir).WithError(st.error()).Warn("cannot remove incomplete ingest");
      }
    }
  }
}

std::string LocalStore::IngestDir(std::string_view ref) const {
  return ingest_root_ + "/" + local::IngestDirName(ref);
}

Result<std::string> LocalStore::BlobPath(const Digest& dgst) const {
  // Digest objects come from Digest::Parse, but a default one is empty: re-validate.
  auto valid = Digest::Parse(dgst.String());
  if (!valid) {
    return std::move(valid).error().Wrap("cannot calculate blob path from invalid digest");
  }
  return blobs_dir_ + "/" + std::string(dgst.Encoded());
}

Result<content::Info> LocalStore::Info(const Context&, const Digest& dgst) {
  BERTH_ASSIGN_OR_RETURN(std::string path, BlobPath(dgst));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, fmt::format("content {}", dgst.String()));
  }
  if (!S_ISREG(st.st_mode)) {
    return NotFound(fmt::format("content {}", dgst.String()));
  }
  return InfoFromStat(dgst, st);
}

Result<content::Info> LocalStore::Update(const Context&, const content::Info&,
                                         const std::vector<std::string>&) {
  // containerd's local store without a LabelStore (content/local/store.go Update).
  return FailedPrecondition("update not supported on immutable content store");
}

berth::Status LocalStore::Walk(const Context&,
                               const std::function<berth::Status(const content::Info&)>& fn,
                               const std::vector<std::string>& filters) {
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filters));
  // Names first, then one stat each: fn may delete blobs (the GC does) without upsetting us.
  BERTH_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDir(blobs_dir_));
  for (const DirEntry& e : entries) {
    auto dgst = Digest::Parse("sha256:" + e.name);
    if (!dgst) {
      log::L()
          .With("path", blobs_dir_ + "/" + e.name)
          .WithError(dgst.error())
          .Warn("invalid digest for blob path");
      continue;
    }
    struct stat st {};
    std::string path = blobs_dir_ + "/" + e.name;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // deleted meanwhile
      return ErrnoError(errno, "stat " + path);
    }
    if (!S_ISREG(st.st_mode)) continue;
    content::Info info = InfoFromStat(*dgst, st);
    if (!filter.MatchesAll() && !filter.Match(filters::MakeAdaptor(
                                    {{"digest", info.digest.String()}}, {{"labels", &info.labels}},
                                    filters::EmptyField::kPresent))) {
      continue;
    }
    BERTH_TRY(fn(info));
  }
  return Ok();
}

berth::Status LocalStore::Delete(const Context&, const Digest& dgst) {
  BERTH_ASSIGN_OR_RETURN(std::string path, BlobPath(dgst));
  if (::unlink(path.c_str()) != 0) {
    return ErrnoError(errno, fmt::format("content {}", dgst.String()));
  }
  return Ok();
}

Result<std::unique_ptr<content::ReaderAt>> LocalStore::ReaderAt(const Context&,
                                                                const Descriptor& desc) {
  BERTH_ASSIGN_OR_RETURN(std::string path, BlobPath(desc.digest));
  fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoError(errno, fmt::format("content {}", desc.digest.String()));
  }
  struct stat st {};
  if (::fstat(fd.Get(), &st) != 0) {
    return ErrnoError(errno, fmt::format("stat content {}", desc.digest.String()));
  }
  if (!S_ISREG(st.st_mode)) {
    return NotFound(fmt::format("content {}", desc.digest.String()));
  }
  return std::unique_ptr<content::ReaderAt>(
      std::make_unique<LocalReaderAt>(std::move(fd), static_cast<int64_t>(st.st_size)));
}

Result<content::Status> LocalStore::Status(const Context&, const std::string& ref) {
  if (ref.empty()) {
    return InvalidArgument("ref must not be empty");
  }
  auto status = local::ReadIngestStatus(IngestDir(ref));
  if (!status) {
    if (status.error().Is(Errc::kNotFound)) {
      return NotFound(fmt::format("ingest ref {:?}", ref));
    }
    return std::move(status).error().Wrap(fmt::format("ingest ref {:?}", ref));
  }
  if (status->ref != ref) {
    return NotFound(fmt::format("ingest ref {:?}", ref));  // another ref's hash: not this one
  }
  return status;
}

Result<std::vector<content::Status>> LocalStore::ListStatuses(
    const Context&, const std::vector<std::string>& filters) {
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filters));
  BERTH_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDir(ingest_root_));
  std::vector<content::Status> active;
  for (const DirEntry& e : entries) {
    if (!e.is_dir) continue;
    auto status = local::ReadIngestStatus(ingest_root_ + "/" + e.name);
    if (!status) {
      // Being created, committed or aborted right now (NotFound), or torn by a crash
      // (InvalidArgument: a bad timestamp; the next Writer() resets it): not an active ingest.
      if (status.error().Is(Errc::kNotFound) || status.error().Is(Errc::kInvalidArgument)) {
        continue;
      }
      return std::move(status).error();
    }
    if (filter.MatchesAll() || filter.Match(filters::MakeAdaptor({{"ref", status->ref}}, {},
                                                                 filters::EmptyField::kPresent))) {
      active.push_back(std::move(*status));
    }
  }
  return active;
}

berth::Status LocalStore::Abort(const Context&, const std::string& ref) {
  if (ref.empty()) {
    return InvalidArgument("ref must not be empty");
  }
  std::string dir = IngestDir(ref);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return NotFound(fmt::format("ingest ref {:?}", ref));
    }
    return ErrnoError(errno, "stat " + dir);
  }
  return fs::RemoveAll(dir);
}

Result<std::unique_ptr<content::Writer>> LocalStore::Writer(const Context&,
                                                            const WriterOptions& opts) {
  if (opts.ref.empty()) {
    return InvalidArgument("ref must not be empty");
  }
  std::string dir = IngestDir(opts.ref);
  BERTH_ASSIGN_OR_RETURN(local::RefLock lock, local::RefLock::TryAcquire(dir, opts.ref));
  // From here on, every error return releases the lock with `lock`.
  if (!opts.desc.digest.Empty()) {
    BERTH_ASSIGN_OR_RETURN(std::string target, BlobPath(opts.desc.digest));
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
      return AlreadyExists(fmt::format("content {}", opts.desc.digest.String()));
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto writer, local::LocalWriter::Open(local::WriterState{
                                          .ref = opts.ref,
                                          .ingest_dir = std::move(dir),
                                          .blobs_dir = blobs_dir_,
                                          .lock = std::move(lock),
                                          .total = std::max<int64_t>(opts.desc.size, 0),
                                          .expected = opts.desc.digest,
                                      }));
  return std::unique_ptr<content::Writer>(std::move(writer));
}

berth::Status LocalStore::WalkStatusRefs(
    const std::function<berth::Status(const std::string&)>& fn) {
  BERTH_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDir(ingest_root_));
  for (const DirEntry& e : entries) {
    if (!e.is_dir) continue;
    std::string path = ingest_root_ + "/" + e.name + "/" + std::string(local::kRefFile);
    auto ref = fs::ReadFile(path);
    if (!ref) {
      log::L().With("path", path).WithError(ref.error()).Error("failed to read ingest ref");
      continue;
    }
    BERTH_TRY(fn(*ref));
  }
  return Ok();
}

berth::Status LocalStore::CleanupIngests(Timestamp older_than) {
  BERTH_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDir(ingest_root_));
  berth::Status first_error = Ok();
  for (const DirEntry& e : entries) {
    if (!e.is_dir) continue;
    std::string dir = ingest_root_ + "/" + e.name;
    // Holding the lock while deciding and removing: no writer can open it meanwhile.
    auto lock = local::RefLock::TryAcquire(dir, e.name);
    if (!lock) continue;  // in use
    Timestamp updated_at{};
    if (auto status = local::ReadIngestStatus(dir)) {
      updated_at = status->updated_at;
    } else {
      struct stat st {};
      if (::lstat(dir.c_str(), &st) != 0) continue;  // gone meanwhile
      updated_at = FromTimespec(st.st_mtim);
    }
    if (updated_at >= older_than) continue;
    log::L().With("path", dir).Debug("removing expired ingest");
    if (auto st = fs::RemoveAll(dir); !st && first_error) {
      first_error = std::move(st).error().Wrap("cleanup ingest " + dir);
    }
  }
  return first_error;
}

}  // namespace berth::content
