// CRI integration with its own berthd: a configured sandbox_image (the `pause` fixture, pulled
// from the registry by RunPodSandbox), and restart recovery — berthd killed with SIGKILL while two
// pods run, one container exiting while it is down; the restarted berthd lists every sandbox and
// container with its state, exit and IP, keeps logging, serves exec and start, stops and removes
// them, and nothing is leaked.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "cri_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

class CriRecoveryIT : public CriTest {
 protected:
  CriEnvOptions Options() override {
    return {.sandbox_image_tag = "pause",
            .cni_from_template = false,
            .registry_tags = {"busybox", "pause"},
            .pull_tags = {"busybox"}};
  }
  v1::Image ImageStatus(const std::string& ref, bool* found) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    v1::ImageStatusResponse resp;
    auto st = Img().ImageStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    *found = resp.has_image();
    return resp.image();
  }
};

TEST_F(CriRecoveryIT, ConfiguredSandboxImageIsPulledFromTheRegistry) {
  const std::string pause = E().Image("pause");
  // Not there before the first pod (no pod uses it now, so removing it is allowed).
  v1::RemoveImageRequest rm;
  rm.mutable_image()->set_image(pause);
  v1::RemoveImageResponse rm_resp;
  ASSERT_TRUE(Img().RemoveImage(Ctx().get(), rm, &rm_resp).ok());
  bool found = true;
  ImageStatus(pause, &found);
  ASSERT_FALSE(found);

  auto cfg = PodConfig("pulled-pause");
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  auto image = ImageStatus(pause, &found);
  ASSERT_TRUE(found) << "RunPodSandbox did not pull the sandbox image";
  EXPECT_EQ(image.uid().value(), 65534);
  std::map<std::string, std::string> info;
  PodStatus(pod, &info);
  auto j = VerboseInfo(info);
  EXPECT_EQ(j.value("image", ""), pause);
  const int pid = j.value("pid", 0);
  ASSERT_GT(pid, 0);
  // The image's entrypoint and cmd (once `runc init` has exec'd it), as its USER.
  const std::string sleep_cmdline(
      "/bin/sleep\0"
      "2147483647\0",
      22);
  const std::string proc = "/proc/" + std::to_string(pid);
  EXPECT_TRUE(Eventually([&] { return ReadText(proc + "/cmdline") == sleep_cmdline; }))
      << ReadText(proc + "/cmdline");
  EXPECT_NE(ReadText(proc + "/status").find("Uid:\t65534\t"), std::string::npos);
  const std::string c =
      RunContainer(pod, cfg, ContainerConfig("worker", "busybox", {"sleep", "3600"}));
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(Sh(c, "cat /proc/1/cmdline"), sleep_cmdline);
}

// Pods started together while the sandbox image is missing: they all pull it at once.
TEST_F(CriRecoveryIT, ConcurrentPodsPullTheMissingSandboxImageTogether) {
  const std::string pause = E().Image("pause");
  v1::RemoveImageRequest rm;
  rm.mutable_image()->set_image(pause);
  v1::RemoveImageResponse rm_resp;
  ASSERT_TRUE(Img().RemoveImage(Ctx().get(), rm, &rm_resp).ok());
  constexpr int kPods = 4;
  std::vector<v1::PodSandboxConfig> cfgs;
  for (int i = 0; i < kPods; ++i) cfgs.push_back(PodConfig("together"));
  std::vector<std::string> ids(kPods);
  std::vector<std::string> errors(kPods);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] {
      v1::RunPodSandboxRequest req;
      *req.mutable_config() = cfgs[i];
      v1::RunPodSandboxResponse resp;
      auto st = Rt().RunPodSandbox(Ctx().get(), req, &resp);
      if (st.ok()) {
        ids[i] = resp.pod_sandbox_id();
      } else {
        errors[i] = Describe(st);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPods; ++i) {
    if (!ids[i].empty()) {
      pods_.push_back(ids[i]);
      pod_cgroups_[ids[i]] = cfgs[i].linux().cgroup_parent().substr(E().CgroupRoot().size() + 1);
    }
    EXPECT_EQ(errors[i], "") << "pod " << i;
  }
  bool found = false;
  ImageStatus(pause, &found);
  EXPECT_TRUE(found);
  for (const auto& id : ids) {
    if (!id.empty()) {
      EXPECT_EQ(PodStatus(id).state(), v1::SANDBOX_READY);
    }
  }
}

TEST_F(CriRecoveryIT, Kill9WhilePodsRunThenRecoverStopAndRemove) {
  const std::string loop = "echo ready; while :; do sleep 0.1; done";
  auto pa_cfg = PodConfig("recover-a");
  auto pb_cfg = PodConfig("recover-b");
  const std::string pa = RunPod(pa_cfg);
  const std::string pb = RunPod(pb_cfg);
  ASSERT_FALSE(pa.empty() || pb.empty());
  // a1 logs a line every 0.1 s; a2 exits 5 on SIGTERM (sent while berthd is down); b1 sleeps;
  // b2 is only created.
  auto a1_cfg =
      ContainerConfig("logger", "busybox",
                      {"sh", "-c", "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done"});
  auto a2_cfg = ContainerConfig("exits", "busybox", {"sh", "-c", "trap 'exit 5' TERM; " + loop});
  auto b1_cfg = ContainerConfig("sleeper", "busybox", {"sleep", "3600"});
  auto b2_cfg = ContainerConfig("created", "busybox", {"sh", "-c", "echo started-later; " + loop});
  const std::string a1 = RunContainer(pa, pa_cfg, a1_cfg);
  const std::string a2 = RunContainer(pa, pa_cfg, a2_cfg);
  const std::string b1 = RunContainer(pb, pb_cfg, b1_cfg);
  const std::string b2 = CreateContainer(pb, pb_cfg, b2_cfg);
  ASSERT_FALSE(a1.empty() || a2.empty() || b1.empty() || b2.empty());
  ASSERT_TRUE(Eventually(
      [&] { return ReadText(LogPath(pa_cfg, a2_cfg)).find("ready") != std::string::npos; }));
  const std::string ip_a = PodStatus(pa).network().ip();
  const std::string ip_b = PodStatus(pb).network().ip();
  const int a1_pid = ContainerPid(a1);
  const int a2_pid = ContainerPid(a2);
  const int b1_pid = ContainerPid(b1);
  ASSERT_GT(a1_pid, 0);
  ASSERT_GT(a2_pid, 0);
  const auto a1_started = ContainerStatus(a1).started_at();
  // a3 exited before the crash.
  const std::string a3 =
      RunContainer(pa, pa_cfg, ContainerConfig("exited", "busybox", {"sh", "-c", "exit 7"}));
  ASSERT_FALSE(a3.empty());
  ASSERT_TRUE(WaitState(a3, v1::CONTAINER_EXITED));
  const auto a3_finished = ContainerStatus(a3).finished_at();
  // Pod c was stopped before the crash; pod d's sandbox process dies while berthd is down.
  auto pc_cfg = PodConfig("recover-c");
  auto pd_cfg = PodConfig("recover-d");
  const std::string pc = RunPod(pc_cfg);
  const std::string pd = RunPod(pd_cfg);
  ASSERT_FALSE(pc.empty() || pd.empty());
  const std::string d1 = RunContainer(pd, pd_cfg, b1_cfg);
  ASSERT_FALSE(d1.empty());
  v1::StopPodSandboxRequest stop_c;
  stop_c.set_pod_sandbox_id(pc);
  v1::StopPodSandboxResponse stop_c_resp;
  ASSERT_TRUE(Rt().StopPodSandbox(Ctx().get(), stop_c, &stop_c_resp).ok());
  std::map<std::string, std::string> d_info;
  PodStatus(pd, &d_info);
  const int pd_pid = VerboseInfo(d_info).value("pid", 0);
  ASSERT_GT(pd_pid, 0);

  E().Kill9();
  ASSERT_EQ(::kill(a2_pid, SIGTERM), 0);
  ASSERT_EQ(::kill(pd_pid, SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return !ProcessAlive(a2_pid) && !ProcessAlive(pd_pid); }));
  ASSERT_TRUE(E().Restart()) << E().D().Log();

  // Every sandbox, READY with its IP (but the stopped and the dead one).
  v1::ListPodSandboxResponse pods;
  ASSERT_TRUE(Rt().ListPodSandbox(Ctx().get(), {}, &pods).ok());
  EXPECT_EQ(pods.items_size(), 4);
  auto sc = PodStatus(pc);
  EXPECT_EQ(sc.state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(sc.network().ip(), "");
  EXPECT_EQ(PodStatus(pd).state(), v1::SANDBOX_NOTREADY);
  EXPECT_TRUE(WaitState(d1, v1::CONTAINER_EXITED));  // killed with its PID namespace
  EXPECT_EQ(ContainerStatus(d1).exit_code(), 128 + SIGKILL);
  auto s3 = ContainerStatus(a3);
  EXPECT_EQ(s3.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s3.exit_code(), 7);
  EXPECT_EQ(s3.reason(), "Error");
  EXPECT_EQ(s3.finished_at(), a3_finished);
  auto sa = PodStatus(pa);
  auto sb = PodStatus(pb);
  EXPECT_EQ(sa.state(), v1::SANDBOX_READY);
  EXPECT_EQ(sb.state(), v1::SANDBOX_READY);
  EXPECT_EQ(sa.network().ip(), ip_a);
  EXPECT_EQ(sb.network().ip(), ip_b);
  // Every container, with its state; the exit while berthd was down included.
  v1::ListContainersResponse ctrs;
  ASSERT_TRUE(Rt().ListContainers(Ctx().get(), {}, &ctrs).ok());
  EXPECT_EQ(ctrs.containers_size(), 6);
  auto s1 = ContainerStatus(a1);
  EXPECT_EQ(s1.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(s1.started_at(), a1_started);
  EXPECT_EQ(ContainerPid(a1), a1_pid);
  auto s2 = ContainerStatus(a2);
  EXPECT_EQ(s2.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s2.exit_code(), 5);
  EXPECT_EQ(s2.reason(), "Error");
  EXPECT_GT(s2.finished_at(), 0);
  EXPECT_EQ(ContainerStatus(b1).state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(ContainerPid(b1), b1_pid);
  EXPECT_EQ(ContainerStatus(b2).state(), v1::CONTAINER_CREATED);
  // Names stay reserved.
  std::string dup;
  EXPECT_FALSE(TryRunPod(pa_cfg, &dup).ok()) << "a second pod took a recovered pod's name";

  // The running container's output still reaches its log — what it wrote while berthd was
  // down included — and the log can be rotated.
  const std::string log = LogPath(pa_cfg, a1_cfg);
  const size_t before = Lines(ReadText(log)).size();
  EXPECT_TRUE(Eventually([&] { return Lines(ReadText(log)).size() >= before + 5; }))
      << "no log line after the restart";
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  v1::ReopenContainerLogRequest reopen;
  reopen.set_container_id(a1);
  v1::ReopenContainerLogResponse reopen_resp;
  auto st = Rt().ReopenContainerLog(Ctx().get(), reopen, &reopen_resp);
  EXPECT_TRUE(st.ok()) << Describe(st);
  EXPECT_TRUE(Eventually([&] { return Lines(ReadText(log)).size() >= 5; }))
      << "no log line after ReopenContainerLog of a recovered container";
  {
    std::vector<std::string> ticks;
    for (const auto& line : Lines(ReadText(log + ".1") + ReadText(log))) {
      auto w = Words(line);
      if (w.size() == 4 && w[1] == "stdout" && w[2] == "F") ticks.push_back(w[3]);
    }
    ASSERT_GT(ticks.size(), 10u);
    for (size_t i = 0; i < ticks.size(); ++i) {
      ASSERT_EQ(ticks[i], "tick-" + std::to_string(i)) << "a log line lost across the restart";
    }
  }
  // Exec, start, stats and the pod's network still work.
  EXPECT_EQ(Sh(b1, "echo alive"), "alive\n");
  st = StartContainer(b2);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_TRUE(Eventually([&] {
    return ReadText(LogPath(pb_cfg, b2_cfg)).find("started-later") != std::string::npos;
  }));
  v1::ContainerStatsRequest creq;
  creq.set_container_id(a1);
  v1::ContainerStatsResponse cresp;
  st = Rt().ContainerStats(Ctx().get(), creq, &cresp);
  EXPECT_TRUE(st.ok()) << Describe(st);
  // Pod to pod: b's address answers (a refused connection, not a timeout).
  auto r = ExecSync(a1, {"wget", "-q", "-O", "/dev/null", "http://" + ip_b + ":1/"});
  EXPECT_NE(r.stderr().find("refused"), std::string::npos) << r.stderr();
  bool found = false;
  ImageStatus(E().Image("busybox"), &found);
  EXPECT_TRUE(found);

  // Stop and remove through the restarted berthd; TearDown then checks that nothing leaked
  // (netns, IP allocations, mounts, shims, runc state, cgroups).
  RemovePod(pa);
  RemovePod(pb);
  RemovePod(pc);
  RemovePod(pd);
  EXPECT_FALSE(ProcessAlive(a1_pid));
  EXPECT_FALSE(ProcessAlive(b1_pid));
}

// The pod's shim dies (SIGKILL) while berthd is down: the restarted berthd finds no task for
// the sandbox (NOTREADY) nor for the running container (its exit is lost: EXITED, 255,
// "Unknown"), and removing the pod leaves nothing — the container's processes included.
TEST_F(CriRecoveryIT, ShimLostWhileBerthdIsDown) {
  auto cfg = PodConfig("lost-shim");
  const std::string pod = RunPod(cfg);
  ASSERT_FALSE(pod.empty());
  const std::string c =
      RunContainer(pod, cfg, ContainerConfig("orphan", "busybox", {"sleep", "3600"}));
  ASSERT_FALSE(c.empty());
  const int pid = ContainerPid(c);
  ASSERT_GT(pid, 0);
  auto shims = FindProcesses({"-address " + E().D().Socket(), "-id " + pod});
  ASSERT_EQ(shims.size(), 1u);

  E().Kill9();
  ASSERT_EQ(::kill(shims[0], SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return !ProcessAlive(shims[0]); }));
  ASSERT_TRUE(E().Restart()) << E().D().Log();

  EXPECT_EQ(PodStatus(pod).state(), v1::SANDBOX_NOTREADY);
  auto s = ContainerStatus(c);
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 255);
  EXPECT_EQ(s.reason(), "Unknown");
  RemovePod(pod);
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(pid); }, std::chrono::seconds(10)))
      << "the container's process outlived its removed pod";
}

}  // namespace
}  // namespace berth::testing
