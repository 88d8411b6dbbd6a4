#pragma once
// When garbage collection runs (containerd's gc/scheduler): once shortly after start-up, after
// deletions (within a pause budget: a collection that took D waits at least D / pause_threshold
// after the previous one), when enough mutations piled up, and on demand for `sync` requests.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include <toml++/toml.h>

#include "metadata/db.h"
#include "metadata/gc.h"

namespace berth::metadata {

struct GcSchedulerConfig {
  double pause_threshold = 0.02;
  int64_t deletion_threshold = 0;
  int64_t mutation_threshold = 100;
  std::chrono::nanoseconds schedule_delay{0};
  std::chrono::nanoseconds startup_delay = std::chrono::milliseconds(100);

  // Keys as containerd's [plugins."io.containerd.gc.v1.scheduler"].
  static Result<GcSchedulerConfig> FromToml(const toml::table& table);
  static const char* DefaultToml();
};

class GcScheduler {
 public:
  GcScheduler(Db& db, GcSchedulerConfig config);
  ~GcScheduler();
  GcScheduler(const GcScheduler&) = delete;
  GcScheduler& operator=(const GcScheduler&) = delete;

  // Feeds the schedule (Db calls this through its mutation callback).
  void OnMutation(bool dirty);
  // Runs a collection that starts after this call and waits for it (sync deletes).
  Result<GcStats> RunNow();

 private:
  void Loop(const std::stop_token& stop);

  Db& db_;
  GcSchedulerConfig config_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  int64_t deletions_ = 0;
  int64_t mutations_ = 0;
  std::optional<std::chrono::steady_clock::time_point> next_;
  uint64_t requested_ = 0;  // RunNow tickets issued
  uint64_t completed_ = 0;  // collections finished
  uint64_t started_ticket_ = 0;
  std::optional<Result<GcStats>> last_;
  std::chrono::steady_clock::time_point last_end_{};
  std::chrono::nanoseconds last_duration_{0};
  std::jthread thread_;
};

}  // namespace berth::metadata
