#include "metadata/gc.h"

#include "metadata/gc_scheduler.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "metadata/testing.h"

namespace berth::metadata {
namespace {

class GcTest : public MetadataFixture {
 protected:
  void Collect() {
    auto s = GarbageCollect(*db_);
    ASSERT_TRUE(s) << s.error().ToString();
  }
  bool Visible(const std::string& ns, const Digest& d) { return bool(cs_->Info({.ns = ns}, d)); }
};

TEST_F(GcTest, UnreferencedContentIsSwept) {
  Digest d = Put("ns", "orphan");
  Collect();
  EXPECT_FALSE(Visible("ns", d));
  EXPECT_FALSE(OnDisk(d));
}

TEST_F(GcTest, ImagesKeepTheirGraph) {
  Digest layer = Put("ns", "layer");
  Digest config = Put("ns", "config");
  Digest manifest = Put("ns", "manifest",
                        {{"containerd.io/gc.ref.content.l.0", layer.String()},
                         {"containerd.io/gc.ref.content.config", config.String()}});
  Digest unrelated = Put("ns", "unrelated");
  ImageStore images(*db_);
  ASSERT_TRUE(images.Create(
      {.ns = "ns"}, {.name = "img", .target = {.media_type = "m", .digest = manifest, .size = 8}}));
  Collect();
  EXPECT_TRUE(Visible("ns", layer));
  EXPECT_TRUE(Visible("ns", config));
  EXPECT_TRUE(Visible("ns", manifest));
  EXPECT_FALSE(Visible("ns", unrelated));
  ASSERT_TRUE(images.Delete({.ns = "ns"}, "img"));
  Collect();
  for (const auto& d : {layer, config, manifest}) {
    EXPECT_FALSE(Visible("ns", d));
    EXPECT_FALSE(OnDisk(d));
  }
}

TEST_F(GcTest, BlobsStayWhileAnyNamespaceHoldsThem) {
  Digest d = Put("a", "both");
  Put("b", "both", {{"containerd.io/gc.root", "x"}});
  Collect();
  EXPECT_FALSE(Visible("a", d)) << "a's record was unreferenced";
  EXPECT_TRUE(Visible("b", d));
  EXPECT_TRUE(OnDisk(d)) << "b still references the blob";
}

TEST_F(GcTest, LeasesProtectUntilDeletedOrExpired) {
  LeaseStore leases(*db_);
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(leases.Create(ctx, "keep", {}));
  ASSERT_TRUE(leases.Create(ctx, "old", {{"containerd.io/gc.expire", "2000-01-01T00:00:00Z"}}));
  Digest kept = Put("ns", "kept", {}, "keep");
  Digest expired = Put("ns", "expired", {}, "old");
  Collect();
  EXPECT_TRUE(Visible("ns", kept));
  EXPECT_FALSE(Visible("ns", expired));
  auto ls = leases.List(ctx, {});
  ASSERT_TRUE(ls);
  ASSERT_EQ(ls->size(), 1u) << "the expired lease is removed";
  ASSERT_TRUE(leases.Delete(ctx, "keep"));
  Collect();
  EXPECT_FALSE(Visible("ns", kept));
  EXPECT_FALSE(OnDisk(kept));
}

TEST_F(GcTest, FlatLeaseDoesNotFollowLabels) {
  LeaseStore leases(*db_);
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(leases.Create(ctx, "flat", {{"containerd.io/gc.flat", "true"}}));
  Digest child = Put("ns", "child");
  Put("ns", "parent", {{"containerd.io/gc.ref.content", child.String()}}, "flat");
  Collect();
  EXPECT_FALSE(Visible("ns", child));
}

TEST_F(GcTest, IngestsExpireUnlessLeased) {
  Context ctx{.ns = "ns"};
  auto w = cs_->Writer(ctx, {.ref = "active"});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->Write("partial"));
  ASSERT_TRUE((*w)->Close());
  Collect();
  EXPECT_TRUE(cs_->Status(ctx, "active")) << "not expired yet";
  // Expire it by hand.
  ASSERT_TRUE(db_->Update([](Txn& txn) {
    return txn.Put(NsKey("ns", {kBucketContent, "ingests", "active", "expireat"}), "1");
  }));
  Collect();
  EXPECT_FALSE(cs_->Status(ctx, "active"));
  auto backend = local_->ListStatuses({}, {});
  ASSERT_TRUE(backend);
  EXPECT_TRUE(backend->empty()) << "backend ingest aborted";
}

TEST_F(GcTest, SchedulerRunsOnDemandAndAfterDeletes) {
  GcScheduler scheduler(*db_, {.startup_delay = std::chrono::hours(1)});
  db_->SetMutationCallback([&](bool dirty) { scheduler.OnMutation(dirty); });
  Digest d = Put("ns", "x");
  auto stats = scheduler.RunNow();
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->blobs_removed, 1u);
  EXPECT_FALSE(OnDisk(d));
  db_->SetMutationCallback(nullptr);
}

// Thresholds are integers only (toml++'s float-to-integer conversion is undefined out of range).
TEST(GcSchedulerConfigTest, ThresholdsMustBeIntegers) {
  auto ok = GcSchedulerConfig::FromToml(toml::parse("deletion_threshold = 5\n"));
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->deletion_threshold, 5);
  for (const char* text : {"deletion_threshold = 5.0\n", "mutation_threshold = 1e300\n"}) {
    auto bad = GcSchedulerConfig::FromToml(toml::parse(text));
    ASSERT_FALSE(bad) << text;
    EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument)) << bad.error().ToString();
  }
}

}  // namespace
}  // namespace berth::metadata
