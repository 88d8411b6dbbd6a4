#pragma once
// What an operator needs from berthd when something hangs (SIGUSR1 writes it to the log, as
// containerd dumps its goroutine stacks there): the gRPC calls in flight with their age, each
// thread and where the kernel has it waiting, the tasks and their shims, the leases, the log
// level and the config as loaded.
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/timeutil.h"

namespace berth::server {

// The gRPC calls being served, fed by an interceptor on every call.
class CallTracker {
 public:
  struct Call {
    std::string method;  // "/containerd.services.tasks.v1.Tasks/Wait"
    std::string ns;      // containerd-namespace of the request, "" if none
    Timestamp started;
  };

  // Oldest first.
  std::vector<Call> InFlight() const;
  // For grpc::ServerBuilder; the tracker must outlive the server built with it.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

  uint64_t Begin(std::string method);
  void SetNamespace(uint64_t id, std::string ns);
  void End(uint64_t id);

 private:
  mutable std::mutex mu_;
  uint64_t next_ = 0;
  std::map<uint64_t, Call> calls_;
};

// One line per thread of this process from /proc/self/task: tid, name, state and the kernel
// function it waits in ("S do_epoll_wait").
std::vector<std::string> ThreadLines();

// "1h2m3.5s" for an age (Go's Duration.String() to the millisecond).
std::string FormatAge(std::chrono::nanoseconds d);

}  // namespace berth::server
