// Setup/Remove with Debian's real plugins (containernetworking-plugins in /usr/lib/cni): bridge +
// host-local + portmap, and loopback. Everything happens in network namespaces the test makes:
// its own "host" netns (where the plugins run and the bridge and iptables rules land) and the
// pod's. Removing the two namespaces at the end takes the bridge, veths and rules with them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>

#include "common/fs.h"
#include "cri/cni/cni.h"
#include "cri/cni/netns.h"

namespace berth::cri::cni {
namespace {

constexpr const char* kPluginDir = "/usr/lib/cni";

struct Link {
  bool up = false;
  std::vector<std::string> ips;
};

// The calling thread's network interfaces (a netlink socket opened here is in its netns).
std::map<std::string, Link> Links() {
  std::map<std::string, Link> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    Link& l = out[a->ifa_name];
    l.up = l.up || (a->ifa_flags & IFF_UP) != 0;
    if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET) {
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
      l.ips.emplace_back(buf);
    }
  }
  ::freeifaddrs(list);
  return out;
}

// Runs a command from the calling thread (so in its netns) and returns its stdout.
std::string Output(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

bool MountedUnder(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + dir + "/") != std::string::npos) return true;
  }
  return false;
}

class RealPlugins : public testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    for (const char* p : {"bridge", "host-local", "portmap", "loopback"}) {
      if (::access((std::string(kPluginDir) + "/" + p).c_str(), X_OK) != 0) {
        // A declared test dependency (scripts/install-deps.sh): missing fails, as missing shims do.
        FAIL() << kPluginDir << "/" << p << " missing: install containernetworking-plugins";
      }
    }
    auto root = fs::TempDir::Create("berth-cni-real-");
    ASSERT_TRUE(root);
    root_.emplace(std::move(*root));
    auto host = NetNs::Create(root_->Path() + "/netns");
    ASSERT_TRUE(host) << host.error().ToString();
    host_ = *host;
    auto pod = NetNs::Create(root_->Path() + "/netns");
    ASSERT_TRUE(pod) << pod.error().ToString();
    pod_ = *pod;
  }

  void TearDown() override {
    if (cni_ && attached_ && host_) {
      (void)host_->Do([&] { return cni_->Remove(Pod()); });
    }
    if (pod_) (void)pod_->Remove();
    if (host_) (void)host_->Remove();
    if (root_) {
      EXPECT_FALSE(MountedUnder(root_->Path()));
    }
    root_.reset();
  }

  std::string Path(std::string_view rel) const { return root_->Path() + "/" + std::string(rel); }

  PodNetwork Pod() const {
    return PodNetwork{
        .id = "berthrealtest0001",
        .netns = pod_->Path(),
        .name = "web",
        .ns = "default",
        .uid = "uid-real",
        .port_mappings = {
            {.protocol = "tcp", .host_port = 18080, .container_port = 80, .host_ip = ""}}};
  }

  std::optional<fs::TempDir> root_;
  std::optional<NetNs> host_;
  std::optional<NetNs> pod_;
  std::unique_ptr<Cni> cni_;
  bool attached_ = false;
};

TEST_F(RealPlugins, BridgeHostLocalPortmap) {
  ASSERT_TRUE(fs::MkdirAll(Path("conf"), 0755));
  std::ofstream(Path("conf/10-berth.conflist")) << R"({
    "cniVersion": "1.0.0",
    "name": "berth-test-net",
    "plugins": [
      {"type": "bridge", "bridge": "berthbr0", "isGateway": true, "ipMasq": false,
       "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.7.0/24"}]],
                "routes": [{"dst": "0.0.0.0/0"}], "dataDir": ")" +
                                                       Path("ipam") + R"("}},
      {"type": "portmap", "capabilities": {"portMappings": true}}
    ]
  })";
  auto cni = Cni::New(
      Config{.bin_dirs = {kPluginDir}, .conf_dir = Path("conf"), .cache_dir = Path("cache")});
  ASSERT_TRUE(cni) << cni.error().ToString();
  cni_ = std::move(*cni);
  ASSERT_TRUE(cni_->Ready()) << cni_->LoadStatus();

  std::optional<Result<SetupResult>> setup;
  attached_ = true;  // from here on TearDown runs DEL, whatever happens
  Status st = host_->Do([&] {
    setup.emplace(cni_->Setup(Pod()));
    return Ok();
  });
  ASSERT_TRUE(st) << st.error().ToString();
  ASSERT_TRUE(*setup) << setup->error().ToString();
  const SetupResult& res = **setup;
  EXPECT_EQ(res.ip.rfind("10.250.7.", 0), 0u) << res.ip;
  EXPECT_TRUE(res.additional_ips.empty());
  EXPECT_EQ(res.interfaces.at("eth0").sandbox, pod_->Path());
  EXPECT_EQ(res.networks.at(1).raw["cniVersion"], "1.0.0");

  // Inside the pod: lo up, eth0 up with the IP.
  std::map<std::string, Link> pod_links;
  ASSERT_TRUE(pod_->Do([&] {
    pod_links = Links();
    return Ok();
  }));
  ASSERT_TRUE(pod_links.count("lo"));
  EXPECT_TRUE(pod_links["lo"].up);
  ASSERT_TRUE(pod_links.count("eth0"));
  EXPECT_TRUE(pod_links["eth0"].up);
  EXPECT_EQ(pod_links["eth0"].ips, std::vector<std::string>{res.ip});

  // In the "host": the bridge and the portmap DNAT chain for the mapping.
  std::map<std::string, Link> host_links;
  std::string nat;
  ASSERT_TRUE(host_->Do([&] {
    host_links = Links();
    nat = Output("iptables-save -t nat 2>&1");
    return Ok();
  }));
  EXPECT_TRUE(host_links.count("berthbr0"));
  EXPECT_NE(nat.find(":CNI-HOSTPORT-DNAT"), std::string::npos) << nat;
  EXPECT_NE(nat.find("--dport 18080"), std::string::npos) << nat;
  // Nothing of it reached the real host's netns.
  EXPECT_FALSE(Links().count("berthbr0"));

  std::string lease = Path("ipam/berth-test-net/" + res.ip);
  EXPECT_EQ(::access(lease.c_str(), F_OK), 0);
  std::string cache = Path("cache/results/berth-test-net-berthrealtest0001-eth0");
  EXPECT_EQ(::access(cache.c_str(), F_OK), 0);

  Status removed = host_->Do([&] { return cni_->Remove(Pod()); });
  ASSERT_TRUE(removed) << removed.error().ToString();
  attached_ = false;
  EXPECT_NE(::access(lease.c_str(), F_OK), 0);
  EXPECT_NE(::access(cache.c_str(), F_OK), 0);
  ASSERT_TRUE(host_->Do([&] {
    nat = Output("iptables-save -t nat 2>&1");
    return Ok();
  }));
  EXPECT_EQ(nat.find("--dport 18080"), std::string::npos) << nat;

  // A second DEL (StopPodSandbox is idempotent) is fine too.
  EXPECT_TRUE(host_->Do([&] { return cni_->Remove(Pod()); }));

  ASSERT_TRUE(pod_->Remove());
  ASSERT_TRUE(host_->Remove());
  EXPECT_FALSE(MountedUnder(root_->Path()));
}

}  // namespace
}  // namespace berth::cri::cni
