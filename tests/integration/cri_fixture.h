#pragma once
// Shared environment of the CRI integration tests: a berthd fully private to the test, driven
// through the project's own runtime.v1 client stubs (cri/api).
//
// What is private, so that nothing reaches the host's network, CNI, runc or cgroup state:
// - a network namespace made for the test (`ip netns add berth-cri-<pid>-<n>`, lo up). berthd,
//   its CNI bridge and iptables rules, and the fixture registry all live there;
// - the CRI config: pinned pod netns under berthd's state dir, CNI conf/cache/bin dirs and
//   host-local's dataDir under the environment's temp dir, a pod subnet 10.200.<random>.0/24
//   that exists only in that namespace, runc's state root under the temp dir, hosts.toml for
//   the plain-http registry;
// - pods get linux.cgroup_parent /berth-cri-it-<pid>-<n>/<pod>, removed by the tests.
// The CNI bin dir is a private directory of symlinks to Debian's containernetworking-plugins
// (/usr/lib/cni) plus one test plugin, `berth-it-fail`, that refuses every ADD.
//
// Cleanup never depends on the test passing: CriTest::TearDown removes every pod the test made
// (then checks that nothing is left behind: netns, IP, mount, shim, runc state, cgroup), and
// ~CriEnv forcibly removes whatever remains (runc delete --force, shims killed by PID, lazy
// unmounts, cgroup rmdirs) before stopping berthd by PID and deleting the namespace.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "cri/api/api.grpc.pb.h"
#include "harness.h"
#include "task_fixture.h"  // FindProcesses, ProcessAlive, MountsUnder, Eventually, Lines

namespace berth::testing {

namespace cri_v1 = ::runtime::v1;

// A network namespace made for one test process: `ip netns add`, loopback up; deleted (`ip netns
// delete`) when destroyed. Namespaces left by test processes that died are deleted on Create.
class TestNetns {
 public:
  static std::unique_ptr<TestNetns> Create();
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& Name() const { return name_; }
  std::string Path() const { return "/run/netns/" + name_; }
  // argv run inside the namespace (`nsenter --net=PATH -- argv...`).
  RunResult Run(std::vector<std::string> argv,
                std::chrono::seconds timeout = std::chrono::seconds(60)) const;

 private:
  explicit TestNetns(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

struct CriEnvOptions {
  // sandbox_image: "" = berth's own pause (sandbox_image = ""); else a fixture tag served by the
  // environment's registry (sandbox_image = <registry>/test/<tag>:latest).
  std::string sandbox_image_tag;
  // true: conf_dir starts empty and conf_template is set; the environment records Status, then
  // sends UpdateRuntimeConfig with the pod CIDR, which writes 10-containerd-net.conflist.
  // false: the conflist is written before berthd starts.
  bool cni_from_template = true;
  std::vector<std::string> registry_tags = {"busybox", "cri", "pause", "multi"};
  std::vector<std::string> pull_tags = {"busybox", "cri"};  // pulled (PullImage) at start
  int max_container_log_line_size = 1000;
};

class CriEnv {
 public:
  // Everything above, started; nullptr with `error` set when a step fails.
  static std::unique_ptr<CriEnv> Start(CriEnvOptions options, std::string* error);
  ~CriEnv();
  CriEnv(const CriEnv&) = delete;
  CriEnv& operator=(const CriEnv&) = delete;

  cri_v1::RuntimeService::Stub& Rt() { return *rt_; }
  cri_v1::ImageService::Stub& Img() { return *img_; }
  Daemon& D() { return *daemon_; }
  Registry& Reg() { return *registry_; }
  const TestNetns& Net() const { return *net_; }
  const CriEnvOptions& Options() const { return options_; }

  // <registry>/test/<tag>:latest.
  std::string Image(const std::string& tag) const { return registry_->Ref(tag); }
  // The image ID PullImage returned at start for a pulled tag.
  std::string ImageId(const std::string& tag) const;
  const std::string& Tmp() const { return tmp_->Path(); }
  const std::string& Subnet() const { return subnet_; }    // 10.200.N.0/24
  const std::string& Gateway() const { return gateway_; }  // 10.200.N.1 (the bridge's address)
  std::string SubnetPrefix() const { return subnet_.substr(0, subnet_.rfind('.') + 1); }
  const std::string& CgroupRoot() const { return cgroup_root_; }  // /berth-cri-it-<pid>-<n>
  std::string ConfDir() const { return Tmp() + "/cni/net.d"; }
  std::string CniCacheDir() const { return Tmp() + "/cni/cache"; }
  std::string IpamDir() const { return Tmp() + "/cni/ipam"; }  // host-local's dataDir
  std::string RuncRoot() const { return Tmp() + "/runc"; }
  std::string LogRoot() const { return Tmp() + "/logs"; }
  std::string NetnsDir() const { return daemon_->State() + "/netns"; }
  std::string CriRoot() const { return daemon_->Root() + "/io.containerd.grpc.v1.cri"; }
  std::string CriState() const { return daemon_->State() + "/io.containerd.grpc.v1.cri"; }
  // The CNI network list the tests use (also what the template renders to).
  std::string Conflist() const;
  // A conflist sorting before it whose second plugin (berth-it-fail) refuses ADD.
  std::string FailingConflist() const;

  // Status before and after UpdateRuntimeConfig wrote the conflist (cni_from_template).
  const cri_v1::StatusResponse& StatusBeforeConf() const { return status_before_; }
  const cri_v1::StatusResponse& StatusAfterConf() const { return status_after_; }

  // berthd: SIGKILL (as a crash), or start again on the same root, state and config.
  void Kill9() { daemon_->Kill9(); }
  bool Restart();

  // Everything a removed pod could leave behind, one message per leftover (empty = clean):
  // sandboxes/containers still listed, pinned netns files, mounts under berthd's root/state and
  // the temp dir, host-local IP allocations, CNI cache entries, shims of this berthd, runc
  // state, sandbox/container cgroups (below the pods' cgroup parents under CgroupRoot()), CRI
  // sandbox/container directories.
  std::vector<std::string> Leaks();
  // Removes all of it by force (pods through CRI when berthd runs, then runc delete --force,
  // shims killed by PID, lazy unmounts, cgroup rmdirs).
  void ForceCleanup();
  // rmdir of <hierarchy>/<CgroupRoot()>/<rel> and everything below it in every cgroup
  // hierarchy (deepest first); false when there was something below it (a leftover container
  // cgroup) or it cannot be removed.
  bool RemoveCgroup(const std::string& rel);

 private:
  CriEnv() = default;
  bool Connect();
  std::vector<std::string> ShimPids() const;

  CriEnvOptions options_;
  std::optional<fs::TempDir> tmp_;
  std::unique_ptr<TestNetns> net_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<Daemon> daemon_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cri_v1::RuntimeService::Stub> rt_;
  std::unique_ptr<cri_v1::ImageService::Stub> img_;
  std::string subnet_;
  std::string gateway_;
  std::string cgroup_root_;
  std::map<std::string, std::string> image_ids_;
  cri_v1::StatusResponse status_before_;
  cri_v1::StatusResponse status_after_;
};

// A deadline for one rpc: `env.Rt().Version(Ctx().get(), req, &resp)`.
std::unique_ptr<grpc::ClientContext> Ctx(std::chrono::seconds timeout = std::chrono::seconds(120));

// "CODE: message" of a failed rpc, for assertion messages.
std::string Describe(const grpc::Status& st);

// The environment shared by every test of the process, started on first use (with the options
// of that first call) and torn down after the last test; nullptr if it could not start (`error`
// says why).
CriEnv* SharedCriEnv(const CriEnvOptions& options, std::string* error);

// Base of the CRI tests: helpers that build configs and run pods and containers, remembering
// every pod so TearDown removes it and then checks that nothing leaked.
class CriTest : public ::testing::Test {
 protected:
  // The environment's options (CriEnvOptions defaults unless a suite says otherwise).
  virtual CriEnvOptions Options() { return {}; }
  void SetUp() override;
  void TearDown() override;

  CriEnv& E() { return *env_; }
  cri_v1::RuntimeService::Stub& Rt() { return env_->Rt(); }
  cri_v1::ImageService::Stub& Img() { return env_->Img(); }

  // A pod config: metadata {name, uid <random>, namespace berth-it}, hostname `name`, a log
  // directory under the temp dir, cgroup_parent <CgroupRoot()>/<name>-<n>.
  cri_v1::PodSandboxConfig PodConfig(const std::string& name);
  // RunPodSandbox; the pod is remembered for cleanup. ADD_FAILURE and "" on error.
  std::string RunPod(const cri_v1::PodSandboxConfig& config, const std::string& handler = "");
  grpc::Status TryRunPod(const cri_v1::PodSandboxConfig& config, std::string* id,
                         const std::string& handler = "");
  // StopPodSandbox + RemovePodSandbox, expecting both to succeed; then the pod's cgroup parent
  // is removed (it must have no container cgroups left).
  void RemovePod(const std::string& id);
  cri_v1::PodSandboxStatus PodStatus(const std::string& id,
                                     std::map<std::string, std::string>* info = nullptr);

  // A container config: image (a fixture tag of the environment's registry), command, log path
  // <name>/0.log (as the kubelet names them).
  cri_v1::ContainerConfig ContainerConfig(const std::string& name, const std::string& tag,
                                          const std::vector<std::string>& command);
  std::string CreateContainer(const std::string& pod, const cri_v1::PodSandboxConfig& pod_config,
                              const cri_v1::ContainerConfig& config);
  grpc::Status TryCreateContainer(const std::string& pod,
                                  const cri_v1::PodSandboxConfig& pod_config,
                                  const cri_v1::ContainerConfig& config, std::string* id);
  grpc::Status StartContainer(const std::string& id);
  // Create + Start; "" (and ADD_FAILURE) on error.
  std::string RunContainer(const std::string& pod, const cri_v1::PodSandboxConfig& pod_config,
                           const cri_v1::ContainerConfig& config);
  cri_v1::ContainerStatus ContainerStatus(const std::string& id,
                                          std::map<std::string, std::string>* info = nullptr);
  // The container's main process (host PID, from the verbose status), 0 if none.
  int ContainerPid(const std::string& id);
  // Polls ContainerStatus until it reports `state` (bounded wait).
  bool WaitState(const std::string& id, cri_v1::ContainerState state,
                 std::chrono::seconds limit = std::chrono::seconds(60));
  // ExecSync; ADD_FAILURE on an rpc error.
  cri_v1::ExecSyncResponse ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                    int64_t timeout = 0);
  // `sh -c script` through ExecSync, expecting exit 0; its stdout.
  std::string Sh(const std::string& id, const std::string& script);
  // The full log path of a container made by ContainerConfig in a pod made by PodConfig.
  std::string LogPath(const cri_v1::PodSandboxConfig& pod, const cri_v1::ContainerConfig& c) {
    return pod.log_directory() + "/" + c.log_path();
  }

  CriEnv* env_ = nullptr;
  std::vector<std::string> pods_;                   // made by RunPod, removed by TearDown
  std::map<std::string, std::string> pod_cgroups_;  // pod id -> cgroup parent below the root
  std::vector<std::string> cgroups_;                // every pod cgroup this test named
};

// Helpers.
// m[key], or "" when absent (protobuf's Map::at would abort the test binary).
template <class Map>
std::string At(const Map& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : std::string(it->second);
}
// The manifest digest ("sha256:...") of a fixture tag in Fixtures()/oci.
std::string FixtureManifestDigest(const std::string& tag);
// The verbose "info" JSON of a status response (PodSandboxStatus, ContainerStatus, ...), parsed;
// null when absent or malformed.
nlohmann::json VerboseInfo(const std::map<std::string, std::string>& info);
// `text` without trailing whitespace.
std::string Trim(std::string text);
// Every subdirectory of `dir` (paths relative to it), recursively, deepest first.
std::vector<std::string> SubdirsDeepestFirst(const std::string& dir);
// The roots of every mounted cgroup hierarchy (v1 controllers, named ones, v2).
std::vector<std::string> CgroupHierarchies();
// readlink /proc/self/ns/<type> of the test process ("pid:[4026531836]").
std::string NsLink(const std::string& type);
// Entries of a directory ("." and ".." excluded); empty when it does not exist.
std::vector<std::string> DirEntries(const std::string& dir);

}  // namespace berth::testing
