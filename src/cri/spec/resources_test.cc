// UpdateContainerResources' merge and ContainerStatus.resources.
#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include "cri/spec/spec.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using testing::TestOptions;
using json = nlohmann::json;

oci::Spec Stored() {
  oci::Spec s = oci::DefaultSpec("k8s.io", "c1");
  s["process"]["oomScoreAdj"] = 500;
  s["linux"]["resources"]["cpu"] = {{"shares", 512}, {"quota", 50000}, {"period", 100000}};
  s["linux"]["resources"]["memory"] = {{"limit", 1 << 30}, {"swap", 1 << 30}};
  s["linux"]["resources"]["unified"] = {{"memory.high", "900M"}};
  return s;
}

TEST(UpdateResources, MergesNonZeroFields) {
  oci::Spec s = Stored();
  ::runtime::v1::LinuxContainerResources r;
  r.set_cpu_quota(20000);                  // changed
  r.set_memory_limit_in_bytes(2LL << 30);  // changed, swap follows
  r.set_cpuset_cpus("1");
  r.set_oom_score_adj(-100);  // not part of the update
  (*r.mutable_unified())["pids.max"] = "100";
  ASSERT_TRUE(UpdateResources(s, r, TestOptions()));
  const json& res = s["linux"]["resources"];
  EXPECT_EQ(res["cpu"],
            json({{"shares", 512}, {"quota", 20000}, {"period", 100000}, {"cpus", "1"}}));
  EXPECT_EQ(res["memory"], json({{"limit", 2LL << 30}, {"swap", 2LL << 30}}));
  EXPECT_EQ(res["unified"], json({{"memory.high", "900M"}, {"pids.max", "100"}}));
  EXPECT_EQ(s["process"]["oomScoreAdj"], 500);
  EXPECT_EQ(res["devices"], json({{{"allow", false}, {"access", "rwm"}}}));
}

TEST(UpdateResources, SwapAndHugepages) {
  oci::Spec s = Stored();
  ::runtime::v1::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(100);
  r.set_memory_swap_limit_in_bytes(300);
  Options opts = TestOptions();
  ASSERT_TRUE(UpdateResources(s, r, opts));
  EXPECT_EQ(s["linux"]["resources"]["memory"], json({{"limit", 100}, {"swap", 300}}));
  // Without a swap controller the old swap stays.
  opts.host.swap_controller = false;
  r.set_memory_limit_in_bytes(200);
  r.set_memory_swap_limit_in_bytes(0);
  ASSERT_TRUE(UpdateResources(s, r, opts));
  EXPECT_EQ(s["linux"]["resources"]["memory"], json({{"limit", 200}, {"swap", 300}}));

  auto* h = r.add_hugepage_limits();
  h->set_page_size("1GB");
  h->set_limit(1ULL << 30);
  ASSERT_TRUE(UpdateResources(s, r, opts));  // ignored: disable_hugetlb_controller
  EXPECT_FALSE(s["linux"]["resources"].contains("hugepageLimits"));
  opts.disable_hugetlb_controller = false;
  ASSERT_TRUE(UpdateResources(s, r, opts));
  EXPECT_EQ(s["linux"]["resources"]["hugepageLimits"],
            json({{{"pageSize", "1GB"}, {"limit", 1ULL << 30}}}));
}

TEST(UpdateResources, FailureLeavesSpecUntouched) {
  oci::Spec s = Stored();
  const oci::Spec before = s;
  ::runtime::v1::LinuxContainerResources r;
  r.set_cpu_shares(2);
  Options opts = TestOptions();
  opts.disable_hugetlb_controller = false;
  opts.host.hugetlb_controller = false;
  opts.tolerate_missing_hugetlb_controller = false;
  auto st = UpdateResources(s, r, opts);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().ToString().rfind("unable to set linux container resources: huge pages", 0),
            0U);
  EXPECT_EQ(s, before);
}

TEST(ResourcesFromSpec, ReadsTheSpec) {
  oci::Spec s = Stored();
  s["linux"]["resources"]["cpu"]["cpus"] = "0-3";
  s["linux"]["resources"]["cpu"]["mems"] = "0";
  s["linux"]["resources"]["hugepageLimits"] = {{{"pageSize", "2MB"}, {"limit", 4096}}};
  ::runtime::v1::LinuxContainerResources want;
  want.set_cpu_period(100000);
  want.set_cpu_quota(50000);
  want.set_cpu_shares(512);
  want.set_cpuset_cpus("0-3");
  want.set_cpuset_mems("0");
  want.set_memory_limit_in_bytes(1 << 30);
  want.set_memory_swap_limit_in_bytes(1 << 30);
  want.set_oom_score_adj(500);
  auto* h = want.add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4096);
  (*want.mutable_unified())["memory.high"] = "900M";
  auto got = ResourcesFromSpec(s);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, want)) << got.DebugString();
  EXPECT_EQ(ResourcesFromSpec(oci::DefaultSpec("k8s.io", "x")).ByteSizeLong(), 0U);
}

TEST(ResourcesFromSpec, RoundTripsContainerSpecResources) {
  ContainerSpecInput in;
  in.id = "c1";
  in.config.add_command("/bin/true");
  auto* r = in.config.mutable_linux()->mutable_resources();
  r->set_cpu_shares(1024);
  r->set_memory_limit_in_bytes(64 << 20);
  r->set_oom_score_adj(300);
  auto dir = fs::TempDir::Create("cri-spec-res-");
  ASSERT_TRUE(dir);
  in.hosts_path = dir->Path() + "/hosts";
  in.resolv_conf_path = dir->Path() + "/resolv.conf";
  in.shm_path = dir->Path() + "/shm";
  auto s = ContainerSpec(in, TestOptions());
  ASSERT_TRUE(s) << s.error().ToString();
  auto got = ResourcesFromSpec(*s);
  EXPECT_EQ(got.cpu_shares(), 1024);
  EXPECT_EQ(got.memory_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(got.memory_swap_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(got.oom_score_adj(), 300);
}

}  // namespace
}  // namespace berth::cri::spec
