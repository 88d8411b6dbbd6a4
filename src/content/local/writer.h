#pragma once
// The local content store's Writer (containerd's content/local/writer.go): appends to
// <ingest>/data, hashing as it goes, and commits by renaming data into blobs/sha256/<hex>.
//
// Created only by LocalStore::Writer(), which holds the ref lock and hands it over. Not
// thread-safe (one stream drives it), but many writers on different refs run in parallel.
//
// Lifetime of the lock: Commit() (success or failure) and Close() release it. Destroying a writer
// that is still open also releases it but does nothing else (no fsync, no updatedat): the same
// state a crash would leave, which a later Writer() on the ref resumes.
#include <cstdint>
#include <memory>
#include <string>

#include "common/digest.h"
#include "common/fs.h"
#include "common/timeutil.h"
#include "content/content.h"
#include "content/local/locks.h"

namespace berth::content::local {

struct WriterState {
  std::string ref;
  std::string ingest_dir;  // <root>/ingest/<hex of sha256(ref)>
  std::string blobs_dir;   // <root>/blobs/sha256
  RefLock lock;            // declared before `data`: the fd closes before the lock is released
  fs::UniqueFd data;       // <ingest_dir>/data, open for writing; invalid once closed
  int64_t offset = 0;      // bytes in `data` == bytes hashed
  int64_t total = 0;       // 0 = unknown
  berth::Digest expected;
  Sha256 hasher;  // over data[0, offset)
  Timestamp started_at{};
  Timestamp updated_at{};
};

class LocalWriter final : public content::Writer {
 public:
  // Opens the ingest `base.ingest_dir` for `base.ref`; `base.lock` must hold it. Resumes an
  // existing ingest (re-hashing data; keeps started_at; records base.total if none was stored),
  // or resets it when its ref file differs, its total differs from a non-zero base.total, or it
  // is unreadable; else creates ref, startedat, updatedat, total (if > 0), then data.
  static Result<std::unique_ptr<LocalWriter>> Open(WriterState base);

  explicit LocalWriter(WriterState state) : s_(std::move(state)) {}
  ~LocalWriter() override;

  // FailedPrecondition once committed or closed. On an I/O error the bytes that did reach the
  // file are counted and hashed, so offset and digest stay consistent with `data`.
  berth::Status Write(std::string_view data) override;
  berth::Digest Digest() const override { return s_.hasher.Current(); }
  // fsync; size > 0 and != offset, or expected non-empty and != Digest() -> FailedPrecondition
  // (the ingest stays, resumable); blob already stored -> AlreadyExists (the ingest is removed);
  // else chmod 0444, mtime = atime = now, rename into blobs/ without replacing, fsync blobs/,
  // remove the ingest directory. NotFound if the ingest was aborted meanwhile. Always releases
  // the lock and closes the writer. Labels are ignored: the local store keeps none.
  berth::Status Commit(int64_t size, const berth::Digest& expected, const Labels& labels) override;
  // In-memory status: ref, offset, total, the expected digest given to Writer(), timestamps.
  Result<content::Status> Status() const override;
  // 0 restarts the ingest (empty data, fresh hash); other sizes are NotImplemented, negative
  // ones InvalidArgument.
  berth::Status Truncate(int64_t size) override;
  // fsyncs data, records updatedat, releases the lock; Ok when already closed/committed.
  berth::Status Close() override;

 private:
  berth::Status CheckOpen() const;
  WriterState s_;
};

}  // namespace berth::content::local
