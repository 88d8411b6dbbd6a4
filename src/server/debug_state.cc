#include "server/debug_state.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::server {
namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One interceptor per call: registers the call when its metadata arrives, drops it when the
// call is done (the interceptor is destroyed with the call).
class TrackingInterceptor final : public grpc::experimental::Interceptor {
 public:
  TrackingInterceptor(CallTracker& tracker, const char* method)
      : tracker_(tracker), id_(tracker.Begin(method != nullptr ? method : "")) {}
  ~TrackingInterceptor() override { tracker_.End(id_); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      if (auto* md = methods->GetRecvInitialMetadata()) {
        if (auto it = md->find("containerd-namespace"); it != md->end()) {
          tracker_.SetNamespace(id_, std::string(it->second.data(), it->second.size()));
        }
      }
    }
    methods->Proceed();
  }

 private:
  CallTracker& tracker_;
  uint64_t id_;
};

class TrackingFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TrackingFactory(CallTracker& tracker) : tracker_(tracker) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new TrackingInterceptor(tracker_, info->method());
  }

 private:
  CallTracker& tracker_;
};

}  // namespace

uint64_t CallTracker::Begin(std::string method) {
  std::lock_guard lock(mu_);
  uint64_t id = next_++;
  calls_.emplace(id, Call{.method = std::move(method), .started = Now()});
  return id;
}

void CallTracker::SetNamespace(uint64_t id, std::string ns) {
  std::lock_guard lock(mu_);
  if (auto it = calls_.find(id); it != calls_.end()) it->second.ns = std::move(ns);
}

void CallTracker::End(uint64_t id) {
  std::lock_guard lock(mu_);
  calls_.erase(id);
}

std::vector<CallTracker::Call> CallTracker::InFlight() const {
  std::vector<Call> out;
  {
    std::lock_guard lock(mu_);
    out.reserve(calls_.size());
    for (const auto& [id, call] : calls_) out.push_back(call);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Call& a, const Call& b) { return a.started < b.started; });
  return out;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CallTracker::NewInterceptorFactory() {
  return std::make_unique<TrackingFactory>(*this);
}

std::vector<std::string> ThreadLines() {
  std::vector<std::pair<long, std::string>> rows;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    const std::string dir = e.path().string();
    const std::string tid = e.path().filename().string();
    std::string name = Trimmed(fs::ReadFile(dir + "/comm").value_or("?"));
    std::string state = "?";
    // stat: "tid (comm) S ...": the state follows the last ')' (a name may hold one).
    if (auto stat = fs::ReadFile(dir + "/stat")) {
      auto close = stat->rfind(')');
      if (close != std::string::npos && close + 2 < stat->size())
        state = stat->substr(close + 2, 1);
    }
    std::string wchan = Trimmed(fs::ReadFile(dir + "/wchan").value_or(""));
    if (wchan.empty() || wchan == "0") wchan = "-";
    long n = std::strtol(tid.c_str(), nullptr, 10);
    rows.emplace_back(n, fmt::format("{} {} {} {}", tid, name, state, wchan));
  }
  std::sort(rows.begin(), rows.end());
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& [n, line] : rows) out.push_back(std::move(line));
  return out;
}

std::string FormatAge(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(d).count();
  if (ms < 0) ms = 0;
  const int64_t h = ms / 3'600'000;
  const int64_t m = ms / 60'000 % 60;
  const double s = static_cast<double>(ms % 60'000) / 1000.0;
  std::string out;
  if (h > 0) out += fmt::format("{}h", h);
  if (h > 0 || m > 0) out += fmt::format("{}m", m);
  std::string sec = fmt::format("{:.3f}", s);
  while (sec.back() == '0') sec.pop_back();
  if (sec.back() == '.') sec.pop_back();
  return out + sec + "s";
}

}  // namespace berth::server
