#pragma once
// The on-disk ingest directory of the local content store, as containerd lays it out
// (content/local/store.go):
//
//   <root>/ingest/<sha256 hex of the ref string>/
//     ref        the ref, verbatim (no newline)
//     startedat  RFC 3339 nano time the ingest began   (written to "<name>.tmp", fsynced, renamed)
//     updatedat  RFC 3339 nano time of the last Close  (same)
//     total      expected size in decimal; only when known (> 0)
//     data       the bytes received so far
//
// `data` is created last, so an ingest whose `data` exists has all its other files. Leftover
// "*.tmp" files come from interrupted renames and are garbage.
#include <string>
#include <string_view>

#include <ctime>

#include "common/errdefs.h"
#include "common/timeutil.h"
#include "content/content.h"

namespace berth::content::local {

inline constexpr std::string_view kDataFile = "data";
inline constexpr std::string_view kRefFile = "ref";
inline constexpr std::string_view kStartedAtFile = "startedat";
inline constexpr std::string_view kUpdatedAtFile = "updatedat";
inline constexpr std::string_view kTotalFile = "total";
inline constexpr std::string_view kTempSuffix = ".tmp";

// The ingest directory's name for `ref`: the hex of sha256(ref), so every name has one length.
std::string IngestDirName(std::string_view ref);

// Whether a file name inside an ingest directory is a leftover of an interrupted write
// ("*.tmp" as containerd names them, or "*.tmp-<pid>" as fs::WriteFileAtomic does).
bool IsTempName(std::string_view name);

Timestamp FromTimespec(const struct timespec& ts);

// Writes `data` to "<path>.tmp", fsyncs it and renames it over `path` (containerd's
// writeToCompletion). A crash leaves the old file or the new one, plus maybe a *.tmp.
// With sync = false the rename is still atomic but nothing is fsynced (for files whose loss only
// resets the ingest).
berth::Status WriteFileSynced(const std::string& path, std::string_view data, bool sync = true);
berth::Status WriteTimestampFile(const std::string& path, Timestamp t);
// NotFound if missing; InvalidArgument if the text is no RFC 3339 time.
Result<Timestamp> ReadTimestampFile(const std::string& path);
// The `total` file of an ingest directory; 0 when absent or unreadable (containerd's total()).
int64_t ReadTotal(const std::string& dir);

// The status of the ingest in `dir` from its files: offset = size of `data`, updated_at = the
// later of `updatedat` and data's mtime (updatedat is written only on Close). NotFound when
// `data` or `ref` is missing (an ingest being created, committed or removed right now);
// `expected` stays empty (the local store does not persist it).
Result<content::Status> ReadIngestStatus(const std::string& dir);

}  // namespace berth::content::local
