// CRI integration: pod sandboxes. Run/Stop/Remove/Status/List with its filters, the pod's files
// (hostname, hosts, resolv.conf from dns_config) as its containers see them, errors (duplicate
// name, unknown runtime handler, unknown ids), a CNI plugin that fails (nothing left behind),
// host-network pods, berth's own pause process (sandbox_image = "").
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include "cri_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

class CriSandboxIT : public CriTest {
 protected:
  std::set<std::string> ListIds(const v1::PodSandboxFilter& filter) {
    v1::ListPodSandboxRequest req;
    *req.mutable_filter() = filter;
    v1::ListPodSandboxResponse resp;
    auto st = Rt().ListPodSandbox(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    std::set<std::string> out;
    for (const auto& p : resp.items()) out.insert(p.id());
    return out;
  }
  // The pod's pinned netns path, from the network namespace of its runtime spec.
  std::string NetnsPath(const std::string& pod) {
    std::map<std::string, std::string> info;
    PodStatus(pod, &info);
    auto j = VerboseInfo(info);
    for (const auto& ns : j["runtimeSpec"]["linux"]["namespaces"]) {
      if (ns.value("type", "") == "network") return ns.value("path", "");
    }
    return "";
  }
  bool IpAllocated(const std::string& ip) {
    return ::access((E().IpamDir() + "/berth-it/" + ip).c_str(), F_OK) == 0;
  }
  std::string SleepingContainer(const std::string& pod, const v1::PodSandboxConfig& cfg,
                                const std::string& name = "sleeper") {
    return RunContainer(pod, cfg, ContainerConfig(name, "busybox", {"sleep", "3600"}));
  }
};

TEST_F(CriSandboxIT, RunStatusListWithFiltersStopRemove) {
  auto a_cfg = PodConfig("pod-a");
  (*a_cfg.mutable_labels())["app"] = "a";
  (*a_cfg.mutable_labels())["tier"] = "x";
  (*a_cfg.mutable_annotations())["note"] = "one";
  auto b_cfg = PodConfig("pod-b");
  (*b_cfg.mutable_labels())["app"] = "b";
  (*b_cfg.mutable_labels())["tier"] = "x";
  const std::string a = RunPod(a_cfg);
  const std::string b = RunPod(b_cfg);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(a.size(), 64u);

  auto sa = PodStatus(a);
  EXPECT_EQ(sa.id(), a);
  EXPECT_EQ(sa.metadata().name(), "pod-a");
  EXPECT_EQ(sa.metadata().uid(), a_cfg.metadata().uid());
  EXPECT_EQ(sa.metadata().namespace_(), "berth-it");
  EXPECT_EQ(sa.state(), v1::SANDBOX_READY);
  EXPECT_GT(sa.created_at(), 0);
  EXPECT_TRUE(sa.network().ip().starts_with(E().SubnetPrefix())) << sa.network().ip();
  EXPECT_NE(sa.network().ip(), E().Gateway());
  EXPECT_EQ(At(sa.labels(), "app"), "a");
  EXPECT_EQ(At(sa.annotations(), "note"), "one");
  EXPECT_EQ(sa.linux().namespaces().options().network(), v1::POD);
  EXPECT_EQ(sa.runtime_handler(), "");
  auto sb = PodStatus(b);
  EXPECT_NE(sb.network().ip(), sa.network().ip());
  EXPECT_TRUE(IpAllocated(sa.network().ip()));

  // The netns is pinned under berthd's state dir (netns_mounts_under_state_dir).
  const std::string netns = NetnsPath(a);
  EXPECT_TRUE(netns.starts_with(E().NetnsDir() + "/cni-")) << netns;
  auto mounts = MountsUnder(E().NetnsDir());
  EXPECT_TRUE(std::find(mounts.begin(), mounts.end(), netns) != mounts.end());

  // While it runs, the pod is where the leak checks look for it.
  const std::string runc_state = E().RuncRoot() + "/k8s.io/" + a;
  EXPECT_EQ(::access(runc_state.c_str(), F_OK), 0) << runc_state;
  EXPECT_EQ(::access((E().CriRoot() + "/sandboxes/" + a + "/hostname").c_str(), F_OK), 0);
  const std::string shm = E().CriState() + "/sandboxes/" + a + "/shm";
  const auto state_mounts = MountsUnder(E().D().State());
  EXPECT_TRUE(std::find(state_mounts.begin(), state_mounts.end(), shm) != state_mounts.end())
      << shm;
  EXPECT_EQ(::access((E().CniCacheDir() + "/results/berth-it-" + a + "-eth0").c_str(), F_OK), 0);
  bool in_cgroup = false;
  for (const auto& h : CgroupHierarchies()) {
    in_cgroup =
        in_cgroup || ::access((h + a_cfg.linux().cgroup_parent() + "/" + a).c_str(), F_OK) == 0;
  }
  EXPECT_TRUE(in_cgroup);
  EXPECT_EQ(FindProcesses({"-address " + E().D().Socket(), "-id " + a}).size(), 1u);

  auto filter = [](auto fn) {
    v1::PodSandboxFilter f;
    fn(f);
    return f;
  };
  using Ids = std::set<std::string>;
  EXPECT_EQ(ListIds({}), (Ids{a, b}));
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_id(a); })), Ids{a});
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_id(a.substr(0, 12)); })), Ids{a});
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_id("ffffffffffff"); })), Ids{});
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::SANDBOX_READY); })),
            (Ids{a, b}));
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::SANDBOX_NOTREADY); })),
            Ids{});
  EXPECT_EQ(ListIds(filter([](auto& f) { (*f.mutable_label_selector())["app"] = "a"; })), Ids{a});
  EXPECT_EQ(ListIds(filter([](auto& f) { (*f.mutable_label_selector())["tier"] = "x"; })),
            (Ids{a, b}));
  EXPECT_EQ(ListIds(filter([](auto& f) {
              (*f.mutable_label_selector())["tier"] = "x";
              (*f.mutable_label_selector())["app"] = "b";
            })),
            Ids{b});
  EXPECT_EQ(ListIds(filter([](auto& f) { (*f.mutable_label_selector())["app"] = "c"; })), Ids{});
  v1::ListPodSandboxResponse listed;
  ASSERT_TRUE(Rt().ListPodSandbox(Ctx().get(), {}, &listed).ok());
  for (const auto& p : listed.items()) {
    if (p.id() != a) continue;
    EXPECT_EQ(p.metadata().name(), "pod-a");
    EXPECT_EQ(p.state(), v1::SANDBOX_READY);
    EXPECT_EQ(p.created_at(), sa.created_at());
    EXPECT_EQ(At(p.labels(), "tier"), "x");
    EXPECT_EQ(At(p.annotations(), "note"), "one");
  }

  // Stop: NOTREADY, no IP, the netns and the IP allocation released. Idempotent.
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(a);
  v1::StopPodSandboxResponse stop_resp;
  auto st = Rt().StopPodSandbox(Ctx().get(), stop, &stop_resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  auto stopped = PodStatus(a);
  EXPECT_EQ(stopped.state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(stopped.network().ip(), "");
  EXPECT_NE(::access(netns.c_str(), F_OK), 0) << "the netns outlived StopPodSandbox";
  EXPECT_FALSE(IpAllocated(sa.network().ip()));
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::SANDBOX_NOTREADY); })),
            Ids{a});
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::SANDBOX_READY); })),
            Ids{b});
  st = Rt().StopPodSandbox(Ctx().get(), stop, &stop_resp);
  EXPECT_TRUE(st.ok()) << "second stop: " << Describe(st);

  // Remove: gone; removing again is fine, the rest says NotFound.
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(a);
  v1::RemovePodSandboxResponse rm_resp;
  st = Rt().RemovePodSandbox(Ctx().get(), rm, &rm_resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  st = Rt().RemovePodSandbox(Ctx().get(), rm, &rm_resp);
  EXPECT_TRUE(st.ok()) << Describe(st);
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(a);
  v1::PodSandboxStatusResponse sresp;
  st = Rt().PodSandboxStatus(Ctx().get(), sreq, &sresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  st = Rt().StopPodSandbox(Ctx().get(), stop, &stop_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_EQ(ListIds({}), Ids{b});

  // RemovePodSandbox of a ready pod stops it first (TearDown checks it left nothing).
  rm.set_pod_sandbox_id(b);
  st = Rt().RemovePodSandbox(Ctx().get(), rm, &rm_resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(ListIds({}), Ids{});
  EXPECT_FALSE(IpAllocated(sb.network().ip()));
}

TEST_F(CriSandboxIT, SandboxProcessDyingMakesThePodNotReady) {
  auto cfg = PodConfig("dies");
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  const std::string c = SleepingContainer(pod, cfg);
  ASSERT_FALSE(c.empty());
  std::map<std::string, std::string> info;
  PodStatus(pod, &info);
  const int pid = VerboseInfo(info).value("pid", 0);
  ASSERT_GT(pid, 0);
  // The pod's PID namespace loses its init: every process in it dies with it.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_TRUE(Eventually([&] { return PodStatus(pod).state() == v1::SANDBOX_NOTREADY; }));
  EXPECT_TRUE(WaitState(c, v1::CONTAINER_EXITED));
  EXPECT_EQ(ContainerStatus(c).exit_code(), 128 + SIGKILL);
  // The network stays until StopPodSandbox, as in containerd; then everything goes.
  EXPECT_TRUE(PodStatus(pod).network().ip().starts_with(E().SubnetPrefix()));
  RemovePod(pod);
}

TEST_F(CriSandboxIT, ContainersSeeThePodHostnameHostsAndResolvConf) {
  auto cfg = PodConfig("dns");
  cfg.set_hostname("berth-dns-test");
  auto* dns = cfg.mutable_dns_config();
  dns->add_servers("10.0.0.10");
  dns->add_servers("10.0.0.11");
  dns->add_searches("svc.example");
  dns->add_searches("example");
  dns->add_options("ndots:5");
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  const std::string c = SleepingContainer(pod, cfg);
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(Sh(c, "cat /etc/hostname"), "berth-dns-test\n");
  EXPECT_EQ(Sh(c, "hostname"), "berth-dns-test\n");
  EXPECT_EQ(Sh(c, "echo $HOSTNAME"), "berth-dns-test\n");
  EXPECT_EQ(Sh(c, "cat /etc/resolv.conf"),
            "search svc.example example\nnameserver 10.0.0.10\nnameserver 10.0.0.11\n"
            "options ndots:5\n");
  EXPECT_EQ(Sh(c, "cat /etc/hosts"), ReadText("/etc/hosts"));
  // The pod's shm (64 MiB tmpfs), shared by its containers.
  const std::string other = SleepingContainer(pod, cfg, "other");
  ASSERT_FALSE(other.empty());
  Sh(c, "echo shared > /dev/shm/note");
  EXPECT_EQ(Sh(other, "cat /dev/shm/note"), "shared\n");
  EXPECT_NE(Sh(other, "df -k /dev/shm").find(" 65536 "), std::string::npos)
      << Sh(other, "df -k /dev/shm");

  // Without dns_config and hostname: the host's resolv.conf and hostname.
  auto plain = PodConfig("nodns");
  plain.clear_hostname();
  const std::string pod2 = RunPod(plain);
  ASSERT_FALSE(pod2.empty());
  const std::string c2 = SleepingContainer(pod2, plain);
  ASSERT_FALSE(c2.empty());
  EXPECT_EQ(Sh(c2, "cat /etc/resolv.conf"), ReadText("/etc/resolv.conf"));
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(Sh(c2, "cat /etc/hostname"), std::string(host) + "\n");
}

TEST_F(CriSandboxIT, DuplicateNameIsRefusedUntilRemoved) {
  auto cfg = PodConfig("dup");
  const std::string a = RunPod(cfg);
  ASSERT_FALSE(a.empty());
  std::string b;
  auto st = TryRunPod(cfg, &b);
  ASSERT_FALSE(st.ok()) << "a second pod with the same name ran: " << b;
  const std::string name = "dup_berth-it_" + cfg.metadata().uid() + "_0";
  EXPECT_NE(st.error_message().find("failed to reserve sandbox name \"" + name + "\": name \"" +
                                    name + "\" is reserved for \"" + a + "\""),
            std::string::npos)
      << Describe(st);
  // Another attempt number is another name.
  auto next = cfg;
  next.mutable_metadata()->set_attempt(1);
  next.mutable_linux()->set_cgroup_parent(PodConfig("dup-next").linux().cgroup_parent());
  EXPECT_FALSE(RunPod(next).empty());
  RemovePod(a);
  EXPECT_FALSE(RunPod(cfg).empty()) << "the name was not released by RemovePodSandbox";
}

TEST_F(CriSandboxIT, RuntimeHandlersAndUnknownIds) {
  auto cfg = PodConfig("handler");
  std::string id;
  auto st = TryRunPod(cfg, &id, "nosuch");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("no runtime for \"nosuch\" is configured"), std::string::npos)
      << Describe(st);
  // Nothing was kept (the name included): the same pod runs with a configured handler.
  const std::string pod = RunPod(cfg, "second");
  ASSERT_FALSE(pod.empty());
  EXPECT_EQ(PodStatus(pod).runtime_handler(), "second");
  const std::string c = SleepingContainer(pod, cfg);
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(Sh(c, "echo ok"), "ok\n");

  const std::string unknown(64, 'e');
  v1::PodSandboxStatusRequest ps;
  ps.set_pod_sandbox_id(unknown);
  v1::PodSandboxStatusResponse ps_resp;
  st = Rt().PodSandboxStatus(Ctx().get(), ps, &ps_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::StopPodSandboxRequest sp;
  sp.set_pod_sandbox_id(unknown);
  v1::StopPodSandboxResponse sp_resp;
  st = Rt().StopPodSandbox(Ctx().get(), sp, &sp_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::RemovePodSandboxRequest rp;
  rp.set_pod_sandbox_id(unknown);
  v1::RemovePodSandboxResponse rp_resp;
  st = Rt().RemovePodSandbox(Ctx().get(), rp, &rp_resp);
  EXPECT_TRUE(st.ok()) << Describe(st);
  std::string cid;
  st = TryCreateContainer(unknown, cfg, ContainerConfig("x", "busybox", {"true"}), &cid);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);

  v1::ContainerStatusRequest cs;
  cs.set_container_id(unknown);
  v1::ContainerStatusResponse cs_resp;
  st = Rt().ContainerStatus(Ctx().get(), cs, &cs_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  st = StartContainer(unknown);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::StopContainerRequest sc;
  sc.set_container_id(unknown);
  v1::StopContainerResponse sc_resp;
  st = Rt().StopContainer(Ctx().get(), sc, &sc_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::RemoveContainerRequest rc;
  rc.set_container_id(unknown);
  v1::RemoveContainerResponse rc_resp;
  st = Rt().RemoveContainer(Ctx().get(), rc, &rc_resp);
  EXPECT_TRUE(st.ok()) << Describe(st);
  v1::ExecSyncRequest ex;
  ex.set_container_id(unknown);
  ex.add_cmd("true");
  v1::ExecSyncResponse ex_resp;
  st = Rt().ExecSync(Ctx().get(), ex, &ex_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::ContainerStatsRequest cst;
  cst.set_container_id(unknown);
  v1::ContainerStatsResponse cst_resp;
  st = Rt().ContainerStats(Ctx().get(), cst, &cst_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::PodSandboxStatsRequest pst;
  pst.set_pod_sandbox_id(unknown);
  v1::PodSandboxStatsResponse pst_resp;
  st = Rt().PodSandboxStats(Ctx().get(), pst, &pst_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
}

TEST_F(CriSandboxIT, FailingCniPluginFailsTheRunAndLeavesNothingBehind) {
  // 00-berth-fail.conflist sorts first (max_conf_num 1): bridge and host-local succeed, then
  // berth-it-fail refuses ADD.
  const std::string fail_conf = E().ConfDir() + "/00-berth-fail.conflist";
  ASSERT_TRUE(fs::WriteFileAtomic(fail_conf, E().FailingConflist()));
  struct Drop {
    std::string path;
    ~Drop() { ::unlink(path.c_str()); }
  } drop{fail_conf};

  auto cfg = PodConfig("cni-fails");
  std::string id;
  auto st = TryRunPod(cfg, &id);
  ASSERT_FALSE(st.ok()) << "RunPodSandbox succeeded through a failing CNI plugin";
  EXPECT_NE(st.error_message().find("berth-it-fail refuses ADD"), std::string::npos)
      << Describe(st);
  // No sandbox, netns, IP allocation, CNI cache entry, mount, shim, runc state or cgroup left.
  auto leaks = E().Leaks();
  std::string text;
  for (const auto& l : leaks) text += "\n  " + l;
  EXPECT_TRUE(leaks.empty()) << "after the failed RunPodSandbox:" << text;
  EXPECT_TRUE(DirEntries(E().IpamDir() + "/berth-it-fail").size() <= 2)  // lock, last_reserved
      << "host-local kept an address of the failed pod";
  // berthd is still serving, and the name was released.
  v1::VersionResponse version;
  EXPECT_TRUE(Rt().Version(Ctx().get(), {}, &version).ok());
  ::unlink(fail_conf.c_str());
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  EXPECT_TRUE(PodStatus(pod).network().ip().starts_with(E().SubnetPrefix()));
}

TEST_F(CriSandboxIT, HostNetworkPod) {
  auto cfg = PodConfig("hostnet");
  cfg.clear_hostname();
  cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  auto s = PodStatus(pod);
  EXPECT_EQ(s.state(), v1::SANDBOX_READY);
  EXPECT_EQ(s.network().ip(), "");
  EXPECT_EQ(s.linux().namespaces().options().network(), v1::NODE);
  EXPECT_TRUE(DirEntries(E().NetnsDir()).empty()) << "a netns was pinned for a host-network pod";
  auto c = ContainerConfig("sleeper", "busybox", {"sleep", "3600"});
  const std::string ctr = RunContainer(pod, cfg, c);
  ASSERT_FALSE(ctr.empty());
  // berthd's network namespace (the one the test made for it), and the host's UTS namespace.
  struct stat st {};
  ASSERT_EQ(::stat(E().Net().Path().c_str(), &st), 0);
  EXPECT_EQ(Sh(ctr, "readlink /proc/self/ns/net"), "net:[" + std::to_string(st.st_ino) + "]\n");
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(Sh(ctr, "hostname"), std::string(host) + "\n");
  EXPECT_EQ(Sh(ctr, "readlink /proc/self/ns/uts"), NsLink("uts") + "\n");
}

TEST_F(CriSandboxIT, SandboxImageEmptyRunsBerthPause) {
  auto cfg = PodConfig("pause");
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  std::map<std::string, std::string> info;
  PodStatus(pod, &info);
  auto j = VerboseInfo(info);
  ASSERT_TRUE(j.is_object()) << info["info"];
  EXPECT_EQ(j.value("image", "?"), "");
  const int pid = j.value("pid", 0);
  ASSERT_GT(pid, 0);
  const std::string cmdline = "/proc/" + std::to_string(pid) + "/cmdline";
  EXPECT_TRUE(Eventually([&] { return ReadText(cmdline) == std::string("/pause\0", 7); }))
      << ReadText(cmdline);  // once `runc init` has exec'd it
  // In the pod's cgroup: <cgroup_parent>/<sandbox id>.
  std::string cgroups = ReadText("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_NE(cgroups.find(cfg.linux().cgroup_parent() + "/" + pod), std::string::npos) << cgroups;
  // The sandbox's spec: read-only root, the berth-pause snapshot as rootfs, oom_score_adj
  // clamped to berthd's own (restrict_oom_score_adj).
  EXPECT_EQ(j["runtimeSpec"]["root"].value("readonly", false), true);
  EXPECT_EQ(j["runtimeSpec"]["process"]["args"], nlohmann::json::array({"/pause"}));
  EXPECT_EQ(Trim(ReadText("/proc/" + std::to_string(pid) + "/oom_score_adj")),
            Trim(ReadText("/proc/" + std::to_string(E().D().Pid()) + "/oom_score_adj")));
}

// A failure after the network is set up (runc refuses an unknown sysctl) unwinds everything.
TEST_F(CriSandboxIT, FailingSandboxStartLeavesNothingBehind) {
  auto cfg = PodConfig("bad-sysctl");
  (*cfg.mutable_linux()->mutable_sysctls())["net.ipv4.berth_no_such_sysctl"] = "1";
  std::string id;
  auto st = TryRunPod(cfg, &id);
  ASSERT_FALSE(st.ok()) << "RunPodSandbox succeeded with a nonexistent sysctl";
  auto leaks = E().Leaks();
  std::string text;
  for (const auto& l : leaks) text += "\n  " + l;
  EXPECT_TRUE(leaks.empty()) << "after the failed RunPodSandbox (" << Describe(st) << "):" << text;
  cfg.mutable_linux()->clear_sysctls();
  EXPECT_FALSE(RunPod(cfg).empty()) << "the name of the failed pod stayed reserved";
}

// What the kubelet does at scale: pods run, used and removed concurrently. Every pod gets its
// own address, and nothing is left.
TEST_F(CriSandboxIT, ConcurrentPodsAndContainers) {
  constexpr int kPods = 6;
  std::vector<v1::PodSandboxConfig> cfgs;
  for (int i = 0; i < kPods; ++i) cfgs.push_back(PodConfig("concurrent"));
  std::vector<std::string> pods(kPods);
  std::vector<std::string> ips(kPods);
  std::vector<std::string> errors(kPods);
  auto c = ContainerConfig("sleeper", "busybox", {"sleep", "3600"});
  std::vector<std::thread> threads;
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] {
      v1::RunPodSandboxRequest run;
      *run.mutable_config() = cfgs[i];
      v1::RunPodSandboxResponse run_resp;
      auto st = Rt().RunPodSandbox(Ctx().get(), run, &run_resp);
      if (!st.ok()) {
        errors[i] = "RunPodSandbox: " + Describe(st);
        return;
      }
      pods[i] = run_resp.pod_sandbox_id();
      v1::CreateContainerRequest create;
      create.set_pod_sandbox_id(pods[i]);
      *create.mutable_config() = c;
      *create.mutable_sandbox_config() = cfgs[i];
      v1::CreateContainerResponse create_resp;
      st = Rt().CreateContainer(Ctx().get(), create, &create_resp);
      if (!st.ok()) {
        errors[i] = "CreateContainer: " + Describe(st);
        return;
      }
      v1::StartContainerRequest start;
      start.set_container_id(create_resp.container_id());
      v1::StartContainerResponse start_resp;
      st = Rt().StartContainer(Ctx().get(), start, &start_resp);
      if (!st.ok()) {
        errors[i] = "StartContainer: " + Describe(st);
        return;
      }
      v1::ExecSyncRequest exec;
      exec.set_container_id(create_resp.container_id());
      for (const char* a : {"sh", "-c", "ip -4 -o addr show eth0"}) exec.add_cmd(a);
      v1::ExecSyncResponse exec_resp;
      st = Rt().ExecSync(Ctx().get(), exec, &exec_resp);
      if (!st.ok() || exec_resp.exit_code() != 0) {
        errors[i] = "ExecSync: " + Describe(st) + " " + exec_resp.stderr();
        return;
      }
      ips[i] = exec_resp.stdout();
    });
  }
  for (auto& t : threads) t.join();
  threads.clear();
  for (int i = 0; i < kPods; ++i) {
    if (!pods[i].empty()) {
      pods_.push_back(pods[i]);  // TearDown removes what the test does not
      pod_cgroups_[pods[i]] = cfgs[i].linux().cgroup_parent().substr(E().CgroupRoot().size() + 1);
    }
    EXPECT_EQ(errors[i], "") << "pod " << i;
  }
  std::set<std::string> unique;
  for (int i = 0; i < kPods; ++i) {
    auto ip = PodStatus(pods[i]).network().ip();
    EXPECT_NE(ips[i].find("inet " + ip + "/"), std::string::npos) << ips[i];
    unique.insert(ip);
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kPods));

  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] {
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(pods[i]);
      v1::StopPodSandboxResponse stop_resp;
      auto st = Rt().StopPodSandbox(Ctx().get(), stop, &stop_resp);
      if (!st.ok()) {
        errors[i] = "StopPodSandbox: " + Describe(st);
        return;
      }
      v1::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(pods[i]);
      v1::RemovePodSandboxResponse rm_resp;
      st = Rt().RemovePodSandbox(Ctx().get(), rm, &rm_resp);
      if (!st.ok()) errors[i] = "RemovePodSandbox: " + Describe(st);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPods; ++i) EXPECT_EQ(errors[i], "") << "pod " << i;
}

}  // namespace
}  // namespace berth::testing
