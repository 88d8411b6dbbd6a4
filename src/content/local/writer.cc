#include "content/local/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>

#include <fmt/format.h>

#include "common/log.h"
#include "content/local/ingest.h"

namespace berth::content::local {
namespace {

// rename(2) that fails with EEXIST instead of replacing `to`, so two commits of one digest cannot
// both claim to have stored it. Falls back to check-then-rename where the filesystem lacks
// RENAME_NOREPLACE (same outcome as containerd's stat + rename).
int RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return -1;
  }
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::rename(from.c_str(), to.c_str());
}

void RemoveIngest(const WriterState& s) {
  if (auto st = fs::RemoveAll(s.ingest_dir); !st) {
    log::L()
        .With("ref", s.ref)
        .With("path", s.ingest_dir)
        .WithError(st.error())
        .Error("failed to remove ingest directory");
  }
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

// Resumes the ingest in s.ingest_dir: checks it belongs to s.ref and agrees on the total, then
// re-hashes data to restore offset and digest (containerd's resumeStatus).
berth::Status Resume(WriterState& s) {
  BERTH_ASSIGN_OR_RETURN(content::Status status, ReadIngestStatus(s.ingest_dir));
  if (status.ref != s.ref) {
    // Layout corruption or a hash collision of refs: nothing here is ours.
    return FailedPrecondition(fmt::format("ref key does not match: {} != {}", s.ref, status.ref));
  }
  if (s.total > 0 && status.total > 0 && s.total != status.total) {
    return FailedPrecondition(
        fmt::format("provided total differs from status: {} != {}", s.total, status.total));
  }
  std::string data_path = Join(s.ingest_dir, kDataFile);
  fs::UniqueFd fd(::open(data_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoError(errno, "open " + data_path);
  }
  Sha256 hasher;
  int64_t offset = 0;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::pread(fd.Get(), buf.data(), buf.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read " + data_path);
    }
    if (n == 0) break;
    hasher.Update(buf.data(), static_cast<size_t>(n));
    offset += n;
  }
  if (status.total == 0 && s.total > 0) {
    BERTH_TRY(WriteFileSynced(Join(s.ingest_dir, kTotalFile), std::to_string(s.total), false));
  } else {
    s.total = status.total;
  }
  s.data = std::move(fd);
  s.hasher = std::move(hasher);
  s.offset = offset;
  s.started_at = status.started_at;
  s.updated_at = status.updated_at;
  return Ok();
}

// Fills a new, empty ingest directory. data comes last: its presence means the rest is there.
berth::Status Create(WriterState& s) {
  Timestamp now = Now();
  BERTH_TRY(WriteFileSynced(Join(s.ingest_dir, kRefFile), s.ref, false));
  BERTH_TRY(WriteTimestampFile(Join(s.ingest_dir, kStartedAtFile), now));
  BERTH_TRY(WriteTimestampFile(Join(s.ingest_dir, kUpdatedAtFile), now));
  if (s.total > 0) {
    BERTH_TRY(WriteFileSynced(Join(s.ingest_dir, kTotalFile), std::to_string(s.total), false));
  }
  std::string data_path = Join(s.ingest_dir, kDataFile);
  fs::UniqueFd fd(::open(data_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (!fd.Valid()) {
    return ErrnoError(errno, "failed to open data file " + data_path);
  }
  s.data = std::move(fd);
  s.hasher.Reset();
  s.offset = 0;
  s.started_at = now;
  s.updated_at = now;
  return Ok();
}

}  // namespace

Result<std::unique_ptr<LocalWriter>> LocalWriter::Open(WriterState base) {
  BERTH_CHECK(base.lock.Valid(), "LocalWriter::Open without the ref lock");
  WriterState s = std::move(base);
  if (::mkdir(s.ingest_dir.c_str(), 0755) != 0) {
    if (errno != EEXIST) {
      return ErrnoError(errno, "create ingest directory " + s.ingest_dir);
    }
    auto resumed = Resume(s);
    if (resumed) {
      return std::make_unique<LocalWriter>(std::move(s));
    }
    log::L()
        .With("ref", s.ref)
        .With("path", s.ingest_dir)
        .WithError(resumed.error())
        .Info("failed to resume the ingest, will recreate it");
    // Start from an empty directory: no stale data tail, total or temp files survive a reset.
    BERTH_TRY(fs::RemoveAll(s.ingest_dir));
    if (::mkdir(s.ingest_dir.c_str(), 0755) != 0) {
      return ErrnoError(errno, "create ingest directory " + s.ingest_dir);
    }
  }
  if (auto created = Create(s); !created) {
    // A half-made ingest is no use to anyone; the next Writer() would reset it anyway.
    (void)fs::RemoveAll(s.ingest_dir);
    return std::move(created).error();
  }
  return std::make_unique<LocalWriter>(std::move(s));
}

// Abandoning an open writer: `data` is closed and the lock released by the members' destructors;
// nothing is synced or recorded, exactly what a crash leaves behind.
LocalWriter::~LocalWriter() = default;

berth::Status LocalWriter::CheckOpen() const {
  if (!s_.data.Valid()) {
    return FailedPrecondition(fmt::format("writer for ref {} is closed", s_.ref));
  }
  return Ok();
}

berth::Status LocalWriter::Write(std::string_view data) {
  BERTH_TRY(CheckOpen());
  size_t off = 0;
  berth::Status result = Ok();
  while (off < data.size()) {
    ssize_t n = ::pwrite(s_.data.Get(), data.data() + off, data.size() - off, s_.offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = ErrnoError(errno, fmt::format("write ingest data for ref {}", s_.ref));
      break;
    }
    s_.hasher.Update(data.data() + off, static_cast<size_t>(n));
    s_.offset += n;
    off += static_cast<size_t>(n);
  }
  s_.updated_at = Now();
  return result;
}

berth::Status LocalWriter::Commit(int64_t size, const berth::Digest& expected, const Labels&) {
  if (!s_.data.Valid()) {
    return FailedPrecondition(fmt::format("cannot commit on closed writer for ref {}", s_.ref));
  }
  // Whatever happens below, the writer ends closed and the ref unlocked (as containerd).
  fs::UniqueFd fd = std::move(s_.data);
  RefLock lock = std::move(s_.lock);

  if (::fsync(fd.Get()) != 0) {
    return ErrnoError(errno, fmt::format("sync ingest data for ref {}", s_.ref));
  }
  struct stat st {};
  if (::fstat(fd.Get(), &st) != 0) {
    return ErrnoError(errno, fmt::format("stat ingest data for ref {}", s_.ref));
  }
  if (st.st_nlink == 0) {
    return NotFound(fmt::format("ingest ref {} was aborted", s_.ref));
  }
  if (size > 0 && size != st.st_size) {
    return FailedPrecondition(fmt::format("unexpected commit size {}, expected {}",
                                          static_cast<int64_t>(st.st_size), size));
  }
  berth::Digest dgst = s_.hasher.Current();
  if (!expected.Empty() && expected != dgst) {
    return FailedPrecondition(
        fmt::format("unexpected commit digest {}, expected {}", dgst.String(), expected.String()));
  }
  // The digest covers the bytes this writer saw; a file changed behind its back is not them.
  if (st.st_size != s_.offset) {
    return FailedPrecondition(fmt::format("ingest data for ref {} has {} bytes, writer wrote {}",
                                          s_.ref, static_cast<int64_t>(st.st_size), s_.offset));
  }

  std::string target = s_.blobs_dir + "/" + std::string(dgst.Encoded());
  struct stat existing {};
  if (::lstat(target.c_str(), &existing) == 0) {
    RemoveIngest(s_);
    return AlreadyExists(fmt::format("content {}", dgst.String()));
  }

  // Read-only and stamped before it becomes visible, so a blob is never seen half-made.
  if (::fchmod(fd.Get(), 0444) != 0) {
    return ErrnoError(errno, fmt::format("make ingest data for ref {} read-only", s_.ref));
  }
  Timestamp now = Now();
  int64_t ns = UnixNanos(now);
  struct timespec times[2] = {{ns / 1'000'000'000, ns % 1'000'000'000},
                              {ns / 1'000'000'000, ns % 1'000'000'000}};
  if (::futimens(fd.Get(), times) != 0) {
    log::L().With("digest", dgst.String()).Warn("failed to change file time to commit time");
  }

  std::string ingest = s_.ingest_dir + "/" + std::string(kDataFile);
  if (RenameNoReplace(ingest, target) != 0) {
    int err = errno;
    if (err == EEXIST) {
      RemoveIngest(s_);
      return AlreadyExists(fmt::format("content {}", dgst.String()));
    }
    if (err == ENOENT) {
      return NotFound(fmt::format("ingest ref {} was aborted", s_.ref));
    }
    // Keep the ingest resumable: a later Writer() must be able to open data for writing.
    (void)::fchmod(fd.Get(), 0644);
    return ErrnoError(err, fmt::format("commit ref {} to {}", s_.ref, target));
  }
  s_.updated_at = now;

  // The blob is in place; what remains cannot be rolled back, so failures are only logged.
  fs::UniqueFd dir(::open(s_.blobs_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.Valid() || ::fsync(dir.Get()) != 0) {
    log::L().With("digest", dgst.String()).Warn("failed to sync blobs directory");
  }
  RemoveIngest(s_);
  return Ok();
}

Result<content::Status> LocalWriter::Status() const {
  return content::Status{
      .ref = s_.ref,
      .offset = s_.offset,
      .total = s_.total,
      .expected = s_.expected,
      .started_at = s_.started_at,
      .updated_at = s_.updated_at,
  };
}

berth::Status LocalWriter::Truncate(int64_t size) {
  if (size < 0) {
    return InvalidArgument(fmt::format("truncate ref {} to negative size {}", s_.ref, size));
  }
  if (size != 0) {
    return NotImplemented(fmt::format("truncate ref {} to {}: only 0 is supported", s_.ref, size));
  }
  BERTH_TRY(CheckOpen());
  if (::ftruncate(s_.data.Get(), 0) != 0) {
    return ErrnoError(errno, fmt::format("truncate ingest data for ref {}", s_.ref));
  }
  s_.offset = 0;
  s_.hasher.Reset();
  s_.updated_at = Now();
  return Ok();
}

berth::Status LocalWriter::Close() {
  if (!s_.data.Valid()) {
    return Ok();
  }
  berth::Status result = Ok();
  if (::fsync(s_.data.Get()) != 0) {
    result = ErrnoError(errno, fmt::format("sync ingest data for ref {}", s_.ref));
  }
  s_.data.Reset();
  // Best effort, as containerd: Status() also looks at data's mtime. NotFound = aborted meanwhile.
  auto updated =
      WriteTimestampFile(s_.ingest_dir + "/" + std::string(kUpdatedAtFile), s_.updated_at);
  if (!updated && !updated.error().Is(Errc::kNotFound)) {
    log::L().With("ref", s_.ref).WithError(updated.error()).Warn("failed to record updatedat");
  }
  s_.lock.Release();
  return result;
}

}  // namespace berth::content::local
