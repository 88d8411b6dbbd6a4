#include "shim/cgroups.h"

#include <gtest/gtest.h>

#include "common/fs.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/cgroups/v2/stats/metrics.pb.h"

namespace berth::shim {
namespace {

void Write(const std::string& path, const std::string& data) {
  auto slash = path.find_last_of('/');
  ASSERT_TRUE(fs::MkdirAll(path.substr(0, slash), 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(path, data));
}

TEST(CgroupTest, ParseProcCgroup) {
  Cgroup cg = ParseProcCgroup(
      "12:pids:/default/c1\n4:cpu,cpuacct:/default/c1\n1:name=systemd:/default/c1\n0::/\n", false);
  EXPECT_EQ(cg.v1.at("pids"), "/default/c1");
  EXPECT_EQ(cg.v1.at("cpu"), "/default/c1");
  EXPECT_EQ(cg.v1.at("cpuacct"), "/default/c1");
  EXPECT_EQ(cg.v1.at("systemd"), "/default/c1");
  EXPECT_EQ(cg.v2, "/");
  Cgroup u = ParseProcCgroup("0::/system.slice/c2\n", true);
  EXPECT_TRUE(u.unified);
  EXPECT_EQ(u.v2, "/system.slice/c2");
}

TEST(CgroupTest, V1Metrics) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string r = dir->Path();
  Write(r + "/pids/ns/c1/pids.current", "3\n");
  Write(r + "/pids/ns/c1/pids.max", "max\n");
  Write(r + "/cpuacct/ns/c1/cpuacct.usage", "123456789\n");
  Write(r + "/cpuacct/ns/c1/cpuacct.usage_percpu", "100 200 \n");
  Write(r + "/cpuacct/ns/c1/cpuacct.stat", "user 10\nsystem 5\n");
  Write(r + "/cpu/ns/c1/cpu.stat", "nr_periods 7\nnr_throttled 2\nthrottled_time 99\n");
  Write(r + "/memory/ns/c1/memory.stat",
        "cache 4096\nrss 8192\npgfault 11\ntotal_pgmajfault 3\nhierarchical_memory_limit 1024\n"
        "unknown_key 5\n");
  Write(r + "/memory/ns/c1/memory.usage_in_bytes", "12288\n");
  Write(r + "/memory/ns/c1/memory.max_usage_in_bytes", "20000\n");
  Write(r + "/memory/ns/c1/memory.limit_in_bytes", "9223372036854771712\n");
  Write(r + "/memory/ns/c1/memory.failcnt", "0\n");
  Write(r + "/memory/ns/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  Write(r + "/blkio/ns/c1/blkio.throttle.io_service_bytes",
        "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n");
  Write(r + "/blkio/ns/c1/blkio.throttle.io_serviced", "8:0 Read 1\n8:0 Write 1\nTotal 2\n");
  Write(r + "/proc/diskstats", "   8       0 sda 1 2 3 4\n");

  Cgroup cg = ParseProcCgroup(
      "1:pids:/ns/c1\n2:cpu:/ns/c1\n3:cpuacct:/ns/c1\n4:memory:/ns/c1\n5:blkio:/ns/c1\n", false);
  cg.root = r;
  cg.proc = r + "/proc";
  auto any = CgroupStats(cg);
  ASSERT_TRUE(any) << any.error().ToString();
  EXPECT_EQ(any->type_url(), "io.containerd.cgroups.v1.Metrics");
  io::containerd::cgroups::v1::Metrics m;
  ASSERT_TRUE(m.ParseFromString(any->value()));
  EXPECT_EQ(m.pids().current(), 3u);
  EXPECT_EQ(m.pids().limit(), 0u);
  EXPECT_EQ(m.cpu().usage().total(), 123456789u);
  EXPECT_EQ(m.cpu().usage().per_cpu_size(), 2);
  EXPECT_EQ(m.cpu().usage().user(),
            uint64_t{10} * 1000000000 / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
  EXPECT_EQ(m.cpu().throttling().periods(), 7u);
  EXPECT_EQ(m.cpu().throttling().throttled_periods(), 2u);
  EXPECT_EQ(m.cpu().throttling().throttled_time(), 99u);
  EXPECT_EQ(m.memory().cache(), 4096u);
  EXPECT_EQ(m.memory().rss(), 8192u);
  EXPECT_EQ(m.memory().pg_fault(), 11u);
  EXPECT_EQ(m.memory().total_pg_maj_fault(), 3u);
  EXPECT_EQ(m.memory().hierarchical_memory_limit(), 1024u);
  EXPECT_EQ(m.memory().usage().usage(), 12288u);
  EXPECT_EQ(m.memory().usage().max(), 20000u);
  EXPECT_EQ(m.memory().usage().limit(), 9223372036854771712u);
  EXPECT_EQ(m.memory_oom_control().oom_kill(), 1u);
  ASSERT_EQ(m.blkio().io_service_bytes_recursive_size(), 2);
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(0).op(), "Read");
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(0).value(), 4096u);
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(0).major(), 8u);
  EXPECT_EQ(m.blkio().io_service_bytes_recursive(0).device(), "/dev/sda");
  EXPECT_EQ(m.blkio().io_serviced_recursive_size(), 2);
}

TEST(CgroupTest, V2Metrics) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string d = dir->Path() + "/ns/c1";
  Write(d + "/pids.current", "2\n");
  Write(d + "/pids.max", "100\n");
  Write(d + "/cpu.stat", "usage_usec 500\nuser_usec 300\nsystem_usec 200\nnr_periods 0\n");
  Write(d + "/memory.stat", "anon 4096\nfile 8192\npgfault 9\n");
  Write(d + "/memory.current", "12288\n");
  Write(d + "/memory.max", "max\n");
  Write(d + "/memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n");
  Write(d + "/io.stat", "8:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n");
  Cgroup cg = ParseProcCgroup("0::/ns/c1\n", true);
  cg.root = dir->Path();
  auto any = CgroupStats(cg);
  ASSERT_TRUE(any) << any.error().ToString();
  EXPECT_EQ(any->type_url(), "io.containerd.cgroups.v2.Metrics");
  io::containerd::cgroups::v2::Metrics m;
  ASSERT_TRUE(m.ParseFromString(any->value()));
  EXPECT_EQ(m.pids().current(), 2u);
  EXPECT_EQ(m.pids().limit(), 100u);
  EXPECT_EQ(m.cpu().usage_usec(), 500u);
  EXPECT_EQ(m.cpu().system_usec(), 200u);
  EXPECT_EQ(m.memory().anon(), 4096u);
  EXPECT_EQ(m.memory().pgfault(), 9u);
  EXPECT_EQ(m.memory().usage(), 12288u);
  EXPECT_EQ(m.memory().usage_limit(), ~uint64_t{0});
  EXPECT_EQ(m.memory_events().oom_kill(), 1u);
  ASSERT_EQ(m.io().usage_size(), 1);
  EXPECT_EQ(m.io().usage(0).rbytes(), 4096u);
  EXPECT_EQ(m.io().usage(0).wios(), 2u);
}

TEST(CgroupTest, MissingCgroupIsNotFound) {
  Cgroup cg = ParseProcCgroup("4:memory:/gone\n", false);
  cg.root = "/nonexistent-cgroup-root";
  EXPECT_TRUE(CgroupStats(cg).error().Is(Errc::kNotFound));
}

}  // namespace
}  // namespace berth::shim
