#pragma once
// In-process ref locks for the local content store (containerd's content/local/locks.go): one
// writer per ingest at a time. Like containerd, the lock is not shared across processes: one
// daemon owns a content root.
//
// The table is process-wide and keyed by the ingest directory's path (root + hash of the ref), so
// two LocalStore objects opened on the same root in one process also exclude each other, while
// stores on different roots never collide on equal refs.
#include <string>
#include <string_view>
#include <utility>

#include "common/errdefs.h"

namespace berth::content::local {

// A held ref lock; released on destruction or Release(). Move-only.
class RefLock {
 public:
  // Unavailable "ref <ref> locked for <duration> (since <time>)" when another holder has `key`.
  static Result<RefLock> TryAcquire(std::string key, std::string_view ref);
  // Whether some RefLock currently holds `key` (a snapshot: may change right after).
  static bool Held(const std::string& key);

  RefLock() = default;
  RefLock(RefLock&& other) noexcept : key_(std::exchange(other.key_, {})) {}
  RefLock& operator=(RefLock&& other) noexcept;
  RefLock(const RefLock&) = delete;
  RefLock& operator=(const RefLock&) = delete;
  ~RefLock() { Release(); }

  bool Valid() const { return !key_.empty(); }
  // Unlocks now; a no-op when not held.
  void Release();

 private:
  explicit RefLock(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace berth::content::local
