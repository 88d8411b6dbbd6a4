#pragma once
// Leases (containerd's leases service): resources created under a lease are kept from garbage
// collection until it is deleted or expires.
#include <chrono>
#include <map>
#include <string>

namespace berth {

struct Lease {
  std::string id;
  std::chrono::system_clock::time_point created_at{};
  std::map<std::string, std::string> labels;
};

struct LeaseOptions {
  std::string id;  // "" = a random id (leases.WithRandomID)
  // leases.WithExpiration: label containerd.io/gc.expire = now + expire; zero = never expires.
  std::chrono::nanoseconds expire = std::chrono::hours(24);
  std::map<std::string, std::string> labels;
};

}  // namespace berth
