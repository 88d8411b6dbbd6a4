#include "metadata/gc_scheduler.h"

#include <fmt/format.h>

#include "common/log.h"

namespace berth::metadata {

const char* GcSchedulerConfig::DefaultToml() {
  return "pause_threshold = 0.02\ndeletion_threshold = 0\nmutation_threshold = 100\n"
         "schedule_delay = \"0s\"\nstartup_delay = \"100ms\"\n";
}

Result<GcSchedulerConfig> GcSchedulerConfig::FromToml(const toml::table& t) {
  GcSchedulerConfig c;
  if (auto v = t["pause_threshold"].value<double>()) c.pause_threshold = *v;
  if (c.pause_threshold <= 0 || c.pause_threshold > 0.5) {
    return InvalidArgument(
        fmt::format("gc scheduler: pause_threshold {} must be in (0, 0.5]", c.pause_threshold));
  }
  // Integers only: toml++'s float-to-integer conversion is undefined for floats out of range.
  for (auto [key, out] : {std::pair{"deletion_threshold", &c.deletion_threshold},
                          std::pair{"mutation_threshold", &c.mutation_threshold}}) {
    if (const toml::node* n = t.get(key); n != nullptr) {
      const auto* i = n->as_integer();
      if (i == nullptr)
        return InvalidArgument(fmt::format("gc scheduler: {} must be an integer", key));
      *out = i->get();
    }
  }
  for (auto [key, out] : {std::pair{"schedule_delay", &c.schedule_delay},
                          std::pair{"startup_delay", &c.startup_delay}}) {
    if (auto v = t[key].value<std::string>()) {
      auto d = ParseGoDuration(*v);
      if (!d) return std::move(d).error().Wrap(fmt::format("gc scheduler: {}", key));
      *out = *d;
    }
  }
  return c;
}

GcScheduler::GcScheduler(Db& db, GcSchedulerConfig config) : db_(db), config_(config) {
  next_ = std::chrono::steady_clock::now() + config_.startup_delay;
  thread_ = std::jthread([this](const std::stop_token& stop) { Loop(stop); });
}

GcScheduler::~GcScheduler() {
  thread_.request_stop();
  cv_.notify_all();
}

void GcScheduler::OnMutation(bool dirty) {
  std::lock_guard lock(mu_);
  if (dirty) {
    ++deletions_;
  } else {
    ++mutations_;
  }
  bool triggered = (config_.deletion_threshold > 0 && deletions_ >= config_.deletion_threshold) ||
                   (config_.mutation_threshold > 0 && mutations_ >= config_.mutation_threshold);
  if (!dirty && !triggered) return;
  auto now = std::chrono::steady_clock::now();
  auto at = now + config_.schedule_delay;
  if (!triggered && last_duration_.count() > 0) {
    auto budget = std::chrono::duration_cast<std::chrono::nanoseconds>(last_duration_ /
                                                                       config_.pause_threshold);
    at = std::max(at, last_end_ + budget);
  }
  if (!next_ || at < *next_) next_ = at;
  cv_.notify_all();
}

Result<GcStats> GcScheduler::RunNow() {
  std::unique_lock lock(mu_);
  uint64_t ticket = ++requested_;
  cv_.notify_all();
  // Wait for a collection that started after the ticket was issued.
  cv_.wait(lock, [&] { return completed_ >= ticket && started_ticket_ >= ticket; });
  return *last_;
}

void GcScheduler::Loop(const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    bool demanded = requested_ > started_ticket_;
    auto now = std::chrono::steady_clock::now();
    if (!demanded && (!next_ || *next_ > now)) {
      if (next_) {
        cv_.wait_until(lock, stop, *next_, [&] { return requested_ > started_ticket_; });
      } else {
        cv_.wait(lock, stop, [&] { return requested_ > started_ticket_ || next_.has_value(); });
      }
      continue;
    }
    started_ticket_ = requested_;
    next_.reset();
    deletions_ = 0;
    mutations_ = 0;
    lock.unlock();
    auto stats = GarbageCollect(db_);
    if (stats) {
      log::L()
          .With("d", std::to_string(stats->duration.count() / 1000) + "µs")
          .With("blobs", static_cast<long long>(stats->blobs_removed))
          .With("records",
                static_cast<long long>(stats->content_records_removed +
                                       stats->ingest_records_removed + stats->leases_removed))
          .Debug("garbage collected");
    } else {
      log::L().WithError(stats.error()).Warn("garbage collection failed");
    }
    lock.lock();
    last_end_ = std::chrono::steady_clock::now();
    if (stats) last_duration_ = stats->duration;
    last_ = std::move(stats);
    completed_ = started_ticket_;
    cv_.notify_all();
  }
}

}  // namespace berth::metadata
