#pragma once
// Progress of image transfers (pull, push, import): the state of each blob, the table of rows a
// transfer reports through its ProgressFn (updated from worker threads, throttled to ~10
// reports a second), and the naming helpers ctr's transfers share.
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "images/image.h"

namespace berth::transfer {

// The state of one blob in a transfer, as a progress display shows it.
struct TransferStatus {
  enum class State {
    kWaiting,      // known, not started
    kResolving,    // the reference (root) is being resolved
    kDownloading,  // bytes arriving (offset/total)
    kUploading,    // bytes leaving (push)
    kExists,       // already in the content store / registry: nothing transferred
    kDone,         // transferred and committed
    kUnpacking,    // layer being applied to a snapshot
    kUnpacked,     // layer applied (or its snapshot existed)
    kFailed,
  };
  std::string ref;  // "index-sha256:...", "manifest-sha256:...", "config-sha256:...",
                    // "layer-sha256:..." as ctr names its jobs
  std::string media_type;
  std::string digest;
  State state = State::kWaiting;
  int64_t offset = 0;
  int64_t total = 0;
  std::chrono::steady_clock::time_point started{};
  std::chrono::steady_clock::time_point updated{};
};
// Called (from any thread, serialized by the caller) with a snapshot of all blobs of the
// transfer whenever one changes, at most every ~100 ms plus once at the end.
using ProgressFn = std::function<void(const std::vector<TransferStatus>&)>;

class ProgressTracker {
 public:
  explicit ProgressTracker(ProgressFn fn) : fn_(std::move(fn)) {}

  // Adds a row (or returns the existing row of `ref`).
  size_t Add(const std::string& ref, const std::string& media_type, const std::string& digest,
             int64_t total, TransferStatus::State state = TransferStatus::State::kWaiting) {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < rows_.size(); ++i) {
      if (rows_[i].ref == ref) return i;
    }
    TransferStatus s;
    s.ref = ref;
    s.media_type = media_type;
    s.digest = digest;
    s.total = total;
    s.state = state;
    s.started = s.updated = std::chrono::steady_clock::now();
    rows_.push_back(std::move(s));
    dirty_ = true;
    return rows_.size() - 1;
  }

  void SetState(size_t row, TransferStatus::State state) {
    Update(row, [state](TransferStatus& s) {
      if (state == TransferStatus::State::kDownloading ||
          state == TransferStatus::State::kUploading) {
        s.started = std::chrono::steady_clock::now();
      }
      s.state = state;
      if (state == TransferStatus::State::kDone || state == TransferStatus::State::kExists) {
        s.offset = s.total;
      }
    });
  }
  void SetOffset(size_t row, int64_t offset) {
    Update(row, [offset](TransferStatus& s) { s.offset = offset; });
  }
  void AddOffset(size_t row, int64_t n) {
    Update(row, [n](TransferStatus& s) { s.offset += n; });
  }

  void Update(size_t row, const std::function<void(TransferStatus&)>& fn) {
    {
      std::lock_guard lock(mu_);
      if (row >= rows_.size()) return;
      fn(rows_[row]);
      rows_[row].updated = std::chrono::steady_clock::now();
      dirty_ = true;
    }
    Report(false);
  }

  // Calls the ProgressFn with a copy of the rows: at most every 100 ms, or now if `force`.
  void Report(bool force) {
    if (!fn_) return;
    std::lock_guard report_lock(report_mu_);
    std::vector<TransferStatus> copy;
    {
      std::lock_guard lock(mu_);
      auto now = std::chrono::steady_clock::now();
      if (!force && (!dirty_ || now - last_ < std::chrono::milliseconds(100))) return;
      last_ = now;
      dirty_ = false;
      copy = rows_;
    }
    fn_(copy);
  }

 private:
  ProgressFn fn_;
  std::mutex report_mu_;  // serializes the calls of fn_
  std::mutex mu_;         // guards the rows
  std::vector<TransferStatus> rows_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// ctr's job names (remotes.MakeRefKey): "manifest-<digest>", "index-...", "layer-...",
// "config-...", "unknown-..." for other media types.
std::string RefKey(const images::OciDescriptor& desc);
// Whether a media type is a manifest, an index, a config, or a layer (the rest).
bool IsManifestType(std::string_view media_type);
bool IsIndexType(std::string_view media_type);
bool IsConfigType(std::string_view media_type);
bool IsLayerType(std::string_view media_type);

// remotes/docker's distribution source label: key "containerd.io/distribution.source.<host>"
// (the host name without its port), value a sorted, comma-separated list of repositories.
std::string DistributionSourceKey(std::string_view domain);
std::string AppendDistributionSource(std::string_view origin, std::string_view repo);
std::vector<std::string> SplitDistributionSource(std::string_view value);

}  // namespace berth::transfer
