#pragma once
// One connection to berthd and the calls made on it: the namespace every call carries (gRPC
// metadata containerd-namespace), an optional deadline per call, and the lease a call runs under
// (containerd-lease), as a Go ctx carrying namespaces.WithNamespace and leases.WithLease.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/errdefs.h"

namespace berth::client {

// Dials berthd's unix socket and waits until it answers. A missing or stale socket (Unavailable)
// or one the caller may not use (PermissionDenied) fails at once, naming the cause and what to
// do; a listener that accepts but does not answer fails after `connect_timeout` (zero means
// containerd's 10 s).
Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                            std::chrono::nanoseconds connect_timeout = {});

// Maps a failed call back to berth's error model (text as the daemon sent it).
Error FromGrpc(const grpc::Status& status);

class Session {
 public:
  // `timeout` bounds each call (zero: none).
  Session(std::shared_ptr<grpc::Channel> channel, std::string ns,
          std::chrono::nanoseconds timeout = {}, std::string lease = "")
      : channel_(std::move(channel)),
        ns_(std::move(ns)),
        timeout_(timeout),
        lease_(std::move(lease)) {}

  const std::shared_ptr<grpc::Channel>& Channel() const { return channel_; }
  const std::string& Namespace() const { return ns_; }
  const std::string& Lease() const { return lease_; }
  Session WithLease(std::string lease) const { return {channel_, ns_, timeout_, std::move(lease)}; }
  Session WithNamespace(std::string ns) const {
    return {channel_, std::move(ns), timeout_, lease_};
  }
  // A fresh context for one call.
  std::unique_ptr<grpc::ClientContext> Context() const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string ns_;
  std::chrono::nanoseconds timeout_;
  std::string lease_;
};

}  // namespace berth::client
