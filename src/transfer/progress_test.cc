// The pieces of pull/push that need no daemon: ctr's job names, the distribution source label
// and the throttled progress table.
#include <gtest/gtest.h>

#include <thread>

#include "transfer/progress.h"

namespace berth::transfer {
namespace {

images::OciDescriptor Desc(std::string media_type, std::string digest) {
  images::OciDescriptor d;
  d.media_type = std::move(media_type);
  d.digest = std::move(digest);
  return d;
}

TEST(RefKey, NamesJobsAsCtrDoes) {
  EXPECT_EQ(RefKey(Desc(std::string(images::kMediaTypeOciManifest), "sha256:a")),
            "manifest-sha256:a");
  EXPECT_EQ(RefKey(Desc(std::string(images::kMediaTypeDockerManifestList), "sha256:b")),
            "index-sha256:b");
  EXPECT_EQ(RefKey(Desc("application/vnd.oci.image.layer.v1.tar+zstd", "sha256:c")),
            "layer-sha256:c");
  EXPECT_EQ(RefKey(Desc("application/vnd.docker.image.rootfs.diff.tar.gzip", "sha256:d")),
            "layer-sha256:d");
  EXPECT_EQ(RefKey(Desc(std::string(images::kMediaTypeDockerConfig), "sha256:e")),
            "config-sha256:e");
  EXPECT_EQ(RefKey(Desc("text/plain", "sha256:f")), "unknown-sha256:f");
}

TEST(DistributionSource, KeyDropsThePortAndValuesAreSortedAndUnique) {
  EXPECT_EQ(DistributionSourceKey("127.0.0.1:5000"), "containerd.io/distribution.source.127.0.0.1");
  EXPECT_EQ(DistributionSourceKey("docker.io"), "containerd.io/distribution.source.docker.io");
  EXPECT_EQ(DistributionSourceKey("[::1]:5000"), "containerd.io/distribution.source.::1");
  EXPECT_EQ(AppendDistributionSource("", "library/busybox"), "library/busybox");
  EXPECT_EQ(AppendDistributionSource("z/b,a/b", "m/x"), "a/b,m/x,z/b");
  EXPECT_EQ(AppendDistributionSource("a/b", "a/b"), "a/b");
  EXPECT_EQ(SplitDistributionSource("a,,b"), (std::vector<std::string>{"a", "b"}));
}

TEST(ProgressTracker, ReportsCopiesThrottledAndForcedAtTheEnd) {
  std::vector<std::vector<TransferStatus>> reports;
  ProgressTracker t([&](const std::vector<TransferStatus>& rows) { reports.push_back(rows); });
  size_t row = t.Add("layer-sha256:x", "m", "sha256:x", 100);
  EXPECT_EQ(t.Add("layer-sha256:x", "m", "sha256:x", 100), row) << "one row per ref";
  t.SetState(row, TransferStatus::State::kDownloading);
  for (int i = 0; i < 50; ++i) t.AddOffset(row, 1);
  // Many updates inside 100 ms: at most the first is reported at once.
  EXPECT_LE(reports.size(), 1u);
  t.Report(true);
  ASSERT_FALSE(reports.empty());
  ASSERT_EQ(reports.back().size(), 1u);
  EXPECT_EQ(reports.back()[0].offset, 50);
  EXPECT_EQ(reports.back()[0].state, TransferStatus::State::kDownloading);
  t.SetState(row, TransferStatus::State::kDone);
  t.Report(true);
  EXPECT_EQ(reports.back()[0].offset, 100) << "done means all of it";
}

}  // namespace
}  // namespace berth::transfer
