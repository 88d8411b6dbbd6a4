#include "cri/store.h"

#include <random>

#include <fmt/format.h>

namespace berth::cri {

void Signal::Fire() {
  {
    std::lock_guard lock(mu_);
    fired_ = true;
  }
  cv_.notify_all();
}

bool Signal::Fired() const {
  std::lock_guard lock(mu_);
  return fired_;
}

bool Signal::WaitUntil(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return fired_; });
}

v1::ContainerState ContainerStatus::State() const {
  if (unknown) return v1::CONTAINER_UNKNOWN;
  if (finished_at != 0) return v1::CONTAINER_EXITED;
  if (started_at != 0) return v1::CONTAINER_RUNNING;
  if (created_at != 0) return v1::CONTAINER_CREATED;
  return v1::CONTAINER_UNKNOWN;
}

Status NameIndex::Reserve(const std::string& name, const std::string& id) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = names_.emplace(name, id);
  if (!inserted && it->second != id) {
    // A plain error, as containerd's registrar returns it (gRPC Unknown).
    return Unknown(fmt::format("name {:?} is reserved for {:?}", name, it->second));
  }
  return Ok();
}

void NameIndex::Release(const std::string& name) {
  std::lock_guard lock(mu_);
  names_.erase(name);
}

template <class T>
Result<std::shared_ptr<T>> Store<T>::Get(const std::string& p, const char* kind) const {
  std::lock_guard lock(mu_);
  if (!p.empty()) {
    if (auto it = items_.find(p); it != items_.end()) return it->second;
    auto it = items_.lower_bound(p);
    if (it != items_.end() && it->first.starts_with(p)) {
      auto next = std::next(it);
      if (next != items_.end() && next->first.starts_with(p)) {
        return Unknown(fmt::format("Multiple IDs found with provided prefix: {}", p));
      }
      return it->second;
    }
  }
  return NotFound(fmt::format("{} {:?} not found", kind, p));
}

template <class T>
std::string Store<T>::Resolve(const std::string& p) const {
  auto v = Get(p, "object");
  if (!v) return "";
  std::lock_guard lock(mu_);
  for (const auto& [id, item] : items_) {
    if (item == *v) return id;
  }
  return "";
}

template class Store<Sandbox>;
template class Store<Container>;

std::string GenerateId() {
  std::random_device rd;
  std::string out;
  out.reserve(64);
  for (int i = 0; i < 8; ++i) out += fmt::format("{:08x}", rd());
  return out;
}

}  // namespace berth::cri
