#include "transfer/stores.h"

#include <algorithm>
#include <random>
#include <thread>

#include <fmt/format.h>

namespace berth::transfer {

std::string NewUniqueId() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() % 1'000'000'000;
  std::random_device rd;
  uint32_t b = rd() & 0xffffff;
  std::string enc;
  for (int shift = 18; shift >= 0; shift -= 6) enc += kAlphabet[(b >> shift) & 0x3f];
  return fmt::format("{}-{}", nanos, enc);
}

Result<Leased> WithLease(Stores& stores, const Context& ctx) {
  if (!ctx.lease.empty()) return Leased{ctx, [] {}};
  BERTH_ASSIGN_OR_RETURN(std::string id, stores.CreateLease(ctx, LeaseSpec{}));
  Context leased{.ns = ctx.ns, .lease = id};
  return Leased{leased, [&stores, leased] { (void)stores.DeleteLease(leased, leased.lease); }};
}

images::BlobReader ContentReader(Stores& stores, const Context& ctx) {
  return [&stores, ctx](const OciDescriptor& d) { return stores.ReadBlob(ctx, d); };
}

Result<std::unique_ptr<BlobWriter>> OpenWriterWaiting(Stores& stores, const Context& ctx,
                                                      const std::string& ref, int64_t total,
                                                      const std::string& expected) {
  using std::chrono::milliseconds;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  std::minstd_rand rng(std::random_device{}());
  milliseconds cap(16);
  while (true) {
    auto w = stores.OpenWriter(ctx, ref, total, expected);
    if (w || !w.error().Is(Errc::kUnavailable) || std::chrono::steady_clock::now() >= give_up) {
      return w;
    }
    std::this_thread::sleep_for(milliseconds(1 + rng() % static_cast<uint64_t>(cap.count())));
    cap = std::min(cap * 2, milliseconds(2048));
  }
}

Status WriteBlob(Stores& stores, const Context& ctx, const std::string& ref,
                 const OciDescriptor& desc, std::string_view data, const Labels& labels) {
  if (static_cast<int64_t>(data.size()) != desc.size) {
    return InvalidArgument(fmt::format("write {}: {} bytes given for a descriptor of size {}",
                                       desc.digest, data.size(), desc.size));
  }
  auto w = OpenWriterWaiting(stores, ctx, ref, desc.size, desc.digest);
  if (!w) {
    if (!w.error().Is(Errc::kAlreadyExists)) return std::move(w).error();
    return stores.UpdateContentLabels(ctx, desc.digest, labels);
  }
  int64_t off = (*w)->Offset();
  if (off > 0 && off <= desc.size) data.remove_prefix(static_cast<size_t>(off));
  BERTH_TRY((*w)->Write(data));
  auto s = (*w)->Commit(labels);
  if (!s) {
    if (s.error().Is(Errc::kFailedPrecondition)) (void)(*w)->Abort();
    return s;
  }
  // Commit labels only land when this commit created the blob.
  return stores.UpdateContentLabels(ctx, desc.digest, labels);
}

}  // namespace berth::transfer
