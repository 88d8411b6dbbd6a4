#include "content/local/locks.h"

#include <chrono>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "common/timeutil.h"

namespace berth::content::local {
namespace {

struct LockTable {
  std::mutex mu;
  std::map<std::string, Timestamp, std::less<>> held;  // key -> since
};

// Never destroyed: writers may be released during static destruction.
LockTable& Table() {
  static auto* table = new LockTable();
  return *table;
}

// Go's Duration.String() closely enough for a human: "1.5s", "12.345ms", "800µs".
std::string FormatDuration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  auto ns = static_cast<double>(d.count());
  if (d >= seconds(1)) return fmt::format("{:.3f}s", ns / 1e9);
  if (d >= milliseconds(1)) return fmt::format("{:.3f}ms", ns / 1e6);
  if (d >= microseconds(1)) return fmt::format("{:.3f}µs", ns / 1e3);
  return fmt::format("{}ns", d.count());
}

}  // namespace

Result<RefLock> RefLock::TryAcquire(std::string key, std::string_view ref) {
  LockTable& t = Table();
  std::lock_guard lock(t.mu);
  if (auto it = t.held.find(key); it != t.held.end()) {
    // The duration tells a dead lock (long) from contention (short), as containerd's message.
    Timestamp now = Now();
    return Unavailable(fmt::format("ref {} locked for {} (since {})", ref,
                                   FormatDuration(now - it->second),
                                   FormatRfc3339Nano(it->second)));
  }
  t.held.emplace(key, Now());
  return RefLock(std::move(key));
}

bool RefLock::Held(const std::string& key) {
  LockTable& t = Table();
  std::lock_guard lock(t.mu);
  return t.held.find(key) != t.held.end();
}

RefLock& RefLock::operator=(RefLock&& other) noexcept {
  if (this != &other) {
    Release();
    key_ = std::exchange(other.key_, {});
  }
  return *this;
}

void RefLock::Release() {
  if (key_.empty()) {
    return;
  }
  LockTable& t = Table();
  std::lock_guard lock(t.mu);
  t.held.erase(key_);
  key_.clear();
}

}  // namespace berth::content::local
