// CRI integration: containers. Lifecycle and exit reasons (Completed, Error, StartError,
// OOMKilled), stop signals and timeouts, ListContainers filters, UpdateContainerResources in the
// cgroup, CRI log format and line splitting, ReopenContainerLog, ExecSync, stats of containers
// and pods, mounts and image volumes, and two containers of a pod sharing its network (served on
// localhost, the pod IP and a mapped host port).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <set>
#include <thread>

#include "cri_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

struct LogRecord {
  std::string time;
  std::string stream;
  std::string tag;
  std::string content;
};

// CRI log records; `bad` collects lines that are not records.
std::vector<LogRecord> ParseLog(const std::string& text, std::vector<std::string>* bad) {
  static const std::regex kTime(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?(Z|[+-]\d{2}:\d{2})$)");
  std::vector<LogRecord> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      bad->push_back("unterminated: " + text.substr(start));
      break;
    }
    std::string line = text.substr(start, nl - start);
    start = nl + 1;
    size_t s1 = line.find(' ');
    size_t s2 = s1 == std::string::npos ? s1 : line.find(' ', s1 + 1);
    size_t s3 = s2 == std::string::npos ? s2 : line.find(' ', s2 + 1);
    if (s3 == std::string::npos) {
      bad->push_back(line);
      continue;
    }
    LogRecord r{line.substr(0, s1), line.substr(s1 + 1, s2 - s1 - 1),
                line.substr(s2 + 1, s3 - s2 - 1), line.substr(s3 + 1)};
    if (!std::regex_match(r.time, kTime) || (r.stream != "stdout" && r.stream != "stderr") ||
        (r.tag != "P" && r.tag != "F")) {
      bad->push_back(line);
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// Whole lines of one stream: P pieces joined up to their F.
std::vector<std::string> JoinedLines(const std::vector<LogRecord>& records,
                                     const std::string& stream) {
  std::vector<std::string> out;
  std::string partial;
  for (const auto& r : records) {
    if (r.stream != stream) continue;
    partial += r.content;
    if (r.tag == "F") out.push_back(std::exchange(partial, {}));
  }
  if (!partial.empty()) out.push_back(partial);
  return out;
}

bool CgroupV1() { return ::access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0; }

// A container's cgroup file: <v1 controller or v2 root><cgroup>/<file>.
std::string CgroupFile(const std::string& controller, const std::string& cgroup,
                       const std::string& v1_file, const std::string& v2_file) {
  if (CgroupV1()) return "/sys/fs/cgroup/" + controller + cgroup + "/" + v1_file;
  return "/sys/fs/cgroup" + cgroup + "/" + v2_file;
}

class CriContainerIT : public CriTest {
 protected:
  std::set<std::string> ListIds(const v1::ContainerFilter& filter) {
    v1::ListContainersRequest req;
    *req.mutable_filter() = filter;
    v1::ListContainersResponse resp;
    auto st = Rt().ListContainers(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    std::set<std::string> out;
    for (const auto& c : resp.containers()) out.insert(c.id());
    return out;
  }
  grpc::Status Stop(const std::string& id, int64_t timeout) {
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    v1::StopContainerResponse resp;
    return Rt().StopContainer(Ctx(std::chrono::seconds(120 + timeout)).get(), req, &resp);
  }
  grpc::Status Remove(const std::string& id) {
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    v1::RemoveContainerResponse resp;
    return Rt().RemoveContainer(Ctx().get(), req, &resp);
  }
  // Waits until the container's log holds `text` (its shell said it is ready).
  bool WaitLog(const std::string& path, const std::string& text) {
    return Eventually([&] { return ReadText(path).find(text) != std::string::npos; });
  }
};

TEST_F(CriContainerIT, LifecycleStatesAndExitReasons) {
  auto pod_cfg = PodConfig("life");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());

  auto cfg = ContainerConfig("graceful", "busybox",
                             {"sh", "-c",
                              "trap 'exit 0' TERM; echo ready; "
                              "while :; do sleep 0.1; done"});
  (*cfg.mutable_labels())["role"] = "main";
  (*cfg.mutable_annotations())["note"] = "kept";
  const std::string id = CreateContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());
  auto created = ContainerStatus(id);
  EXPECT_EQ(created.id(), id);
  EXPECT_EQ(created.metadata().name(), "graceful");
  EXPECT_EQ(created.state(), v1::CONTAINER_CREATED);
  EXPECT_GT(created.created_at(), 0);
  EXPECT_EQ(created.started_at(), 0);
  EXPECT_EQ(created.finished_at(), 0);
  EXPECT_EQ(created.image().image(), E().Image("busybox"));
  EXPECT_EQ(created.image_ref(),
            E().Reg().Addr() + "/test/busybox@" + FixtureManifestDigest("busybox"));
  EXPECT_EQ(At(created.labels(), "role"), "main");
  EXPECT_EQ(At(created.annotations(), "note"), "kept");
  EXPECT_EQ(created.log_path(), LogPath(pod_cfg, cfg));

  auto st = StartContainer(id);
  ASSERT_TRUE(st.ok()) << Describe(st);
  auto running = ContainerStatus(id);
  EXPECT_EQ(running.state(), v1::CONTAINER_RUNNING);
  EXPECT_GE(running.started_at(), running.created_at());
  EXPECT_GT(ContainerPid(id), 0);
  st = StartContainer(id);
  EXPECT_FALSE(st.ok()) << "a running container started again";

  // One shim per pod: the sandbox's shim serves the container too.
  EXPECT_EQ(FindProcesses({"-address " + E().D().Socket()}).size(), 1u);
  EXPECT_EQ(FindProcesses({"-address " + E().D().Socket(), "-id " + pod}).size(), 1u);
  // The containerd objects, as the real ctr sees them in k8s.io.
  auto listed = Lines(E().D().Ctr({"containers", "ls", "-q"}, "k8s.io").out);
  EXPECT_TRUE(std::find(listed.begin(), listed.end(), id) != listed.end());
  EXPECT_TRUE(std::find(listed.begin(), listed.end(), pod) != listed.end());
  auto record = E().D().Ctr({"containers", "info", id}, "k8s.io").out;
  EXPECT_NE(record.find("\"io.cri-containerd.kind\": \"container\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"role\": \"main\""), std::string::npos) << record;
  auto tasks = E().D().Ctr({"tasks", "ls"}, "k8s.io").out;
  EXPECT_NE(tasks.find(id), std::string::npos) << tasks;
  // OCI annotations of the container and of its sandbox.
  std::map<std::string, std::string> info;
  ContainerStatus(id, &info);
  auto annotations = VerboseInfo(info)["runtimeSpec"]["annotations"];
  EXPECT_EQ(annotations.value("io.kubernetes.cri.container-type", ""), "container");
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-id", ""), pod);
  EXPECT_EQ(annotations.value("io.kubernetes.cri.container-name", ""), "graceful");
  EXPECT_EQ(annotations.value("io.kubernetes.cri.image-name", ""), E().Image("busybox"));
  PodStatus(pod, &info);
  annotations = VerboseInfo(info)["runtimeSpec"]["annotations"];
  EXPECT_EQ(annotations.value("io.kubernetes.cri.container-type", ""), "sandbox");
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-id", ""), pod);
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-name", ""), "life");
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-namespace", ""), "berth-it");
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-uid", ""), pod_cfg.metadata().uid());
  EXPECT_EQ(annotations.value("io.kubernetes.cri.sandbox-log-directory", ""),
            pod_cfg.log_directory());
  // The log file, under the kubelet's <name>/<attempt>.log, 0640.
  struct stat log_stat {};
  ASSERT_EQ(::stat(LogPath(pod_cfg, cfg).c_str(), &log_stat), 0);
  EXPECT_EQ(log_stat.st_mode & 07777, 0640u);
  ASSERT_TRUE(WaitLog(LogPath(pod_cfg, cfg), "ready"));
  st = Stop(id, 30);
  ASSERT_TRUE(st.ok()) << Describe(st);
  auto done = ContainerStatus(id);
  EXPECT_EQ(done.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(done.exit_code(), 0);
  EXPECT_EQ(done.reason(), "Completed");
  EXPECT_GE(done.finished_at(), done.started_at());
  st = Stop(id, 30);  // stopping an exited container: a no-op
  EXPECT_TRUE(st.ok()) << Describe(st);
  st = Remove(id);
  ASSERT_TRUE(st.ok()) << Describe(st);
  v1::ContainerStatusRequest sreq;
  sreq.set_container_id(id);
  v1::ContainerStatusResponse sresp;
  st = Rt().ContainerStatus(Ctx().get(), sreq, &sresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_TRUE(Remove(id).ok());

  // A failed CreateContainer keeps nothing, its name included.
  auto missing = ContainerConfig("exit3", "busybox", {"sh", "-c", "exit 3"});
  missing.mutable_image()->set_image(E().Reg().Addr() + "/test/never-pulled:latest");
  std::string none;
  st = TryCreateContainer(pod, pod_cfg, missing, &none);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("failed to resolve image"), std::string::npos) << Describe(st);
  EXPECT_TRUE(ListIds({}).empty());

  // Exits on its own with 3: Error.
  const std::string failing =
      RunContainer(pod, pod_cfg, ContainerConfig("exit3", "busybox", {"sh", "-c", "exit 3"}));
  ASSERT_FALSE(failing.empty());
  ASSERT_TRUE(WaitState(failing, v1::CONTAINER_EXITED));
  auto f = ContainerStatus(failing);
  EXPECT_EQ(f.exit_code(), 3);
  EXPECT_EQ(f.reason(), "Error");

  // A command that does not exist: StartContainer fails, the status says StartError and 128.
  const std::string bad =
      CreateContainer(pod, pod_cfg, ContainerConfig("bad", "busybox", {"/no/such/binary"}));
  ASSERT_FALSE(bad.empty());
  st = StartContainer(bad);
  EXPECT_FALSE(st.ok());
  auto b = ContainerStatus(bad);
  EXPECT_EQ(b.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(b.exit_code(), 128);
  EXPECT_EQ(b.reason(), "StartError");
  EXPECT_FALSE(b.message().empty());
  EXPECT_GT(b.finished_at(), 0);

  // RemovePodSandbox removes a running container and the exited ones.
  const std::string left =
      RunContainer(pod, pod_cfg, ContainerConfig("left-running", "busybox", {"sleep", "3600"}));
  ASSERT_FALSE(left.empty());
  RemovePod(pod);
  EXPECT_TRUE(ListIds({}).empty());
}

TEST_F(CriContainerIT, CommandArgsEnvironmentAndMissingMetadata) {
  auto pod_cfg = PodConfig("argv");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  // No command and no args: the image's Cmd (busybox: sh, which reads an empty stdin).
  auto image_cmd = ContainerConfig("image-cmd", "busybox", {});
  const std::string a = RunContainer(pod, pod_cfg, image_cmd);
  // command + args, envs over the image's (PATH included), the pod's HOSTNAME.
  auto explicit_cfg = ContainerConfig("explicit", "busybox", {"sh", "-c"});
  explicit_cfg.add_args("echo args-$FOO-$HOSTNAME-$PATH; pwd");
  explicit_cfg.set_working_dir("/tmp");
  for (const auto& [k, v] :
       {std::pair<std::string, std::string>{"FOO", "bar"}, {"PATH", "/custom:/bin"}}) {
    auto* e = explicit_cfg.add_envs();
    e->set_key(k);
    e->set_value(v);
  }
  const std::string b = RunContainer(pod, pod_cfg, explicit_cfg);
  ASSERT_FALSE(a.empty() || b.empty());
  ASSERT_TRUE(WaitState(a, v1::CONTAINER_EXITED));
  EXPECT_EQ(ContainerStatus(a).exit_code(), 0);
  EXPECT_EQ(ContainerStatus(a).reason(), "Completed");
  ASSERT_TRUE(WaitState(b, v1::CONTAINER_EXITED));
  std::vector<std::string> bad;
  auto lines = JoinedLines(ParseLog(ReadText(LogPath(pod_cfg, explicit_cfg)), &bad), "stdout");
  EXPECT_EQ(lines, (std::vector<std::string>{"args-bar-argv-/custom:/bin", "/tmp"}));

  // Metadata is required.
  auto nameless = ContainerConfig("nameless", "busybox", {"true"});
  nameless.clear_metadata();
  std::string id;
  auto st = TryCreateContainer(pod, pod_cfg, nameless, &id);
  EXPECT_FALSE(st.ok());
  auto pod_nameless = PodConfig("nameless");
  pod_nameless.clear_metadata();
  st = TryRunPod(pod_nameless, &id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("sandbox config must include metadata"), std::string::npos)
      << Describe(st);
}

// An image fetched (not unpacked) by the real ctr: concurrent CreateContainers all unpack it
// into the CRI's snapshotter and share the result.
TEST_F(CriContainerIT, ConcurrentCreatesOfAnImageNotYetUnpacked) {
  const std::string ref = E().Image("multi");
  auto fetch = E().Net().Run(
      {"ctr", "-a", E().D().Socket(), "-n", "k8s.io", "content", "fetch", "--plain-http", ref});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err;
  auto pod_cfg = PodConfig("unpack");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  constexpr int kContainers = 4;
  std::vector<std::string> ids(kContainers);
  std::vector<std::string> errors(kContainers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kContainers; ++i) {
    threads.emplace_back([&, i] {
      auto c = ContainerConfig("reader-" + std::to_string(i), "multi", {"sleep", "3600"});
      v1::CreateContainerRequest req;
      req.set_pod_sandbox_id(pod);
      *req.mutable_config() = c;
      *req.mutable_sandbox_config() = pod_cfg;
      v1::CreateContainerResponse resp;
      auto st = Rt().CreateContainer(Ctx().get(), req, &resp);
      if (st.ok()) {
        ids[i] = resp.container_id();
      } else {
        errors[i] = Describe(st);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kContainers; ++i) {
    EXPECT_EQ(errors[i], "") << "container " << i;
    if (ids[i].empty()) continue;
    ASSERT_TRUE(StartContainer(ids[i]).ok());
    // multi's layers applied in order: whiteouts, opaque directory, links.
    EXPECT_EQ(Sh(ids[i],
                 "cat /data/keep/a /data/keep/c /data/gone/new /data/link; "
                 "ls /data/gone; test -e /data/del || echo no-del"),
              "one\nthree\nfresh\none\nnew\nno-del\n");
  }
  v1::RemoveImageRequest rm;
  rm.mutable_image()->set_image(ref);
  v1::RemoveImageResponse rm_resp;
  EXPECT_TRUE(Img().RemoveImage(Ctx().get(), rm, &rm_resp).ok());
}

TEST_F(CriContainerIT, StopSignalTimeoutAndSigkill) {
  auto pod_cfg = PodConfig("stop");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  const std::string loop = "echo ready; while :; do sleep 0.1; done";

  // SIGTERM ignored: SIGKILL after the timeout.
  auto deaf_cfg =
      ContainerConfig("deaf", "busybox", {"sh", "-c", "trap 'echo got-term' TERM; " + loop});
  const std::string deaf = RunContainer(pod, pod_cfg, deaf_cfg);
  // The image's STOPSIGNAL (SIGUSR1 in `cri`).
  auto usr1_cfg = ContainerConfig(
      "usr1", "cri", {"sh", "-c", "trap 'exit 10' USR1; trap 'exit 15' TERM; " + loop});
  const std::string usr1 = RunContainer(pod, pod_cfg, usr1_cfg);
  // SIGTERM by default.
  auto term_cfg = ContainerConfig("term", "busybox", {"sh", "-c", "trap 'exit 15' TERM; " + loop});
  const std::string term = RunContainer(pod, pod_cfg, term_cfg);
  // Timeout 0: SIGKILL at once, whatever the handlers.
  auto now_cfg = ContainerConfig("now", "busybox", {"sh", "-c", "trap 'exit 15' TERM; " + loop});
  const std::string now = RunContainer(pod, pod_cfg, now_cfg);
  ASSERT_FALSE(deaf.empty() || usr1.empty() || term.empty() || now.empty());
  for (const auto* c : {&deaf_cfg, &usr1_cfg, &term_cfg, &now_cfg}) {
    ASSERT_TRUE(WaitLog(LogPath(pod_cfg, *c), "ready")) << c->metadata().name();
  }

  // Two StopContainer calls at once: the stop signal is sent once; both return after SIGKILL.
  grpc::Status concurrent;
  std::thread other([&] { concurrent = Stop(deaf, 2); });
  auto st = Stop(deaf, 2);
  other.join();
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_TRUE(concurrent.ok()) << Describe(concurrent);
  auto s = ContainerStatus(deaf);
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 128 + SIGKILL);
  EXPECT_EQ(s.reason(), "Error");
  const std::string deaf_log = ReadText(LogPath(pod_cfg, deaf_cfg));
  EXPECT_EQ(deaf_log.find("got-term"), deaf_log.rfind("got-term")) << deaf_log;
  EXPECT_NE(deaf_log.find("got-term"), std::string::npos) << deaf_log;

  st = Stop(usr1, 30);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(ContainerStatus(usr1).exit_code(), 10) << "not stopped with the image's STOPSIGNAL";

  st = Stop(term, 30);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(ContainerStatus(term).exit_code(), 15);

  st = Stop(now, 0);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(ContainerStatus(now).exit_code(), 128 + SIGKILL);
}

TEST_F(CriContainerIT, OomKilledWithAMemoryLimit) {
  auto pod_cfg = PodConfig("oom");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  // dd's 96 MiB buffer, filled from /dev/zero, in a 32 MiB cgroup (swap limited alike).
  auto cfg = ContainerConfig("hog", "busybox",
                             {"dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"});
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitState(id, v1::CONTAINER_EXITED));
  auto s = ContainerStatus(id);
  EXPECT_EQ(s.exit_code(), 128 + SIGKILL) << ReadText(LogPath(pod_cfg, cfg));
  EXPECT_EQ(s.reason(), "OOMKilled");
}

TEST_F(CriContainerIT, ListContainersFilters) {
  auto p1_cfg = PodConfig("list-1");
  auto p2_cfg = PodConfig("list-2");
  const std::string p1 = RunPod(p1_cfg);
  const std::string p2 = RunPod(p2_cfg);
  ASSERT_FALSE(p1.empty() || p2.empty());
  auto web = ContainerConfig("web", "busybox", {"sleep", "3600"});
  (*web.mutable_labels())["app"] = "web";
  (*web.mutable_labels())["tier"] = "front";
  (*web.mutable_annotations())["a"] = "1";
  auto db = ContainerConfig("db", "busybox", {"sleep", "3600"});
  (*db.mutable_labels())["app"] = "db";
  auto web2 = ContainerConfig("web", "busybox", {"sleep", "3600"});
  (*web2.mutable_labels())["app"] = "web";
  const std::string c1 = RunContainer(p1, p1_cfg, web);
  const std::string c2 = CreateContainer(p1, p1_cfg, db);  // created only
  const std::string c3 = RunContainer(p2, p2_cfg, web2);
  ASSERT_FALSE(c1.empty() || c2.empty() || c3.empty());

  auto filter = [](auto fn) {
    v1::ContainerFilter f;
    fn(f);
    return f;
  };
  using Ids = std::set<std::string>;
  EXPECT_EQ(ListIds({}), (Ids{c1, c2, c3}));
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_id(c1); })), Ids{c1});
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_id(c1.substr(0, 10)); })), Ids{c1});
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_pod_sandbox_id(p1); })), (Ids{c1, c2}));
  EXPECT_EQ(ListIds(filter([&](auto& f) { f.set_pod_sandbox_id(p2.substr(0, 10)); })), Ids{c3});
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::CONTAINER_RUNNING); })),
            (Ids{c1, c3}));
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::CONTAINER_CREATED); })),
            Ids{c2});
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::CONTAINER_EXITED); })),
            Ids{});
  EXPECT_EQ(ListIds(filter([](auto& f) { (*f.mutable_label_selector())["app"] = "web"; })),
            (Ids{c1, c3}));
  EXPECT_EQ(ListIds(filter([&](auto& f) {
              (*f.mutable_label_selector())["app"] = "web";
              f.set_pod_sandbox_id(p2);
            })),
            Ids{c3});
  EXPECT_EQ(ListIds(filter([](auto& f) {
              (*f.mutable_label_selector())["app"] = "web";
              (*f.mutable_label_selector())["tier"] = "front";
            })),
            Ids{c1});
  EXPECT_EQ(ListIds(filter([&](auto& f) {
              f.set_id(c1);
              f.set_pod_sandbox_id(p2);
            })),
            Ids{});

  v1::ListContainersRequest req;
  req.mutable_filter()->set_id(c1);
  v1::ListContainersResponse resp;
  ASSERT_TRUE(Rt().ListContainers(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.containers_size(), 1);
  const auto& c = resp.containers(0);
  EXPECT_EQ(c.pod_sandbox_id(), p1);
  EXPECT_EQ(c.metadata().name(), "web");
  EXPECT_EQ(c.image().image(), E().Image("busybox"));
  EXPECT_EQ(c.image_ref(), E().ImageId("busybox"));
  EXPECT_EQ(c.state(), v1::CONTAINER_RUNNING);
  EXPECT_GT(c.created_at(), 0);
  EXPECT_EQ(At(c.labels(), "tier"), "front");
  EXPECT_EQ(At(c.annotations(), "a"), "1");

  ASSERT_TRUE(Stop(c1, 0).ok());
  EXPECT_EQ(ListIds(filter([](auto& f) { f.mutable_state()->set_state(v1::CONTAINER_EXITED); })),
            Ids{c1});
}

TEST_F(CriContainerIT, UpdateContainerResourcesReachesTheCgroup) {
  auto pod_cfg = PodConfig("update");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  auto cfg = ContainerConfig("limited", "busybox", {"sleep", "3600"});
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  cfg.mutable_linux()->mutable_resources()->set_cpu_shares(512);
  cfg.mutable_linux()->mutable_resources()->set_cpuset_cpus("0");
  cfg.mutable_linux()->mutable_resources()->set_oom_score_adj(500);
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());
  const std::string cgroup = pod_cfg.linux().cgroup_parent() + "/" + id;
  const std::string mem = CgroupFile("memory", cgroup, "memory.limit_in_bytes", "memory.max");
  const std::string quota = CgroupFile("cpu", cgroup, "cpu.cfs_quota_us", "cpu.max");
  EXPECT_EQ(Trim(ReadText(mem)), std::to_string(64 << 20));
  if (CgroupV1()) {
    EXPECT_EQ(Trim(ReadText(CgroupFile("cpu", cgroup, "cpu.shares", ""))), "512");
  }
  EXPECT_EQ(Trim(ReadText(CgroupFile("cpuset", cgroup, "cpuset.cpus", "cpuset.cpus"))), "0");
  EXPECT_EQ(Trim(ReadText("/proc/" + std::to_string(ContainerPid(id)) + "/oom_score_adj")), "500");

  v1::UpdateContainerResourcesRequest req;
  req.set_container_id(id);
  req.mutable_linux()->set_memory_limit_in_bytes(96 << 20);
  req.mutable_linux()->set_cpu_period(100000);
  req.mutable_linux()->set_cpu_quota(50000);
  v1::UpdateContainerResourcesResponse resp;
  auto st = Rt().UpdateContainerResources(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(Trim(ReadText(mem)), std::to_string(96 << 20));
  EXPECT_NE(ReadText(quota).find("50000"), std::string::npos) << ReadText(quota);
  if (CgroupV1()) {  // the container's own view (no cgroup namespace on v1)
    EXPECT_EQ(Sh(id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"),
              std::to_string(96 << 20) + "\n");
  }
  auto s = ContainerStatus(id);
  EXPECT_EQ(s.resources().linux().memory_limit_in_bytes(), 96 << 20);
  EXPECT_EQ(s.resources().linux().cpu_quota(), 50000);
  EXPECT_EQ(s.resources().linux().cpu_shares(), 512);

  // A created container: the update is stored and applied when it starts.
  auto cfg2 = ContainerConfig("later", "busybox", {"sleep", "3600"});
  const std::string id2 = CreateContainer(pod, pod_cfg, cfg2);
  ASSERT_FALSE(id2.empty());
  req.set_container_id(id2);
  req.mutable_linux()->set_memory_limit_in_bytes(48 << 20);
  st = Rt().UpdateContainerResources(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_TRUE(StartContainer(id2).ok());
  EXPECT_EQ(Trim(ReadText(CgroupFile("memory", pod_cfg.linux().cgroup_parent() + "/" + id2,
                                     "memory.limit_in_bytes", "memory.max"))),
            std::to_string(48 << 20));
}

TEST_F(CriContainerIT, LogFormatStreamsAndLongLineSplitting) {
  // max_container_log_line_size = 1000 in the environment's config.
  ASSERT_EQ(E().Options().max_container_log_line_size, 1000);
  auto pod_cfg = PodConfig("logs");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  auto cfg = ContainerConfig(
      "writer", "busybox",
      {"sh", "-c",
       "echo hello; echo oops >&2; echo; head -c 2500 /dev/zero | tr '\\0' a; echo; "
       "head -c 1000 /dev/zero | tr '\\0' b; echo; head -c 2000 /dev/zero | tr '\\0' c; echo; "
       "printf 'crlf\\r\\n'; printf tail-without-newline"});
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitState(id, v1::CONTAINER_EXITED));
  ASSERT_EQ(ContainerStatus(id).exit_code(), 0);
  const std::string text = ReadText(LogPath(pod_cfg, cfg));
  std::vector<std::string> bad;
  auto records = ParseLog(text, &bad);
  EXPECT_TRUE(bad.empty()) << "not CRI log records:\n" << text;
  std::vector<std::string> out;
  for (const auto& r : records) {
    if (r.stream == "stdout") out.push_back(r.tag + " " + r.content);
  }
  const std::vector<std::string> want = {
      "F hello", "F ", "P " + std::string(1000, 'a'), "P " + std::string(1000, 'a'),
      "F " + std::string(500, 'a'),
      // exactly the limit: one record; twice: P then F
      "F " + std::string(1000, 'b'), "P " + std::string(1000, 'c'), "F " + std::string(1000, 'c'),
      "F crlf", "P tail-without-newline"};
  EXPECT_EQ(out, want) << text;
  EXPECT_EQ(JoinedLines(records, "stderr"), std::vector<std::string>{"oops"});

  // With a tty: one stream (stdout), "\r\n" endings dropped.
  auto tty_cfg = ContainerConfig("tty", "busybox", {"sh", "-c", "echo on-tty; echo err >&2"});
  tty_cfg.set_tty(true);
  const std::string tty = RunContainer(pod, pod_cfg, tty_cfg);
  ASSERT_FALSE(tty.empty());
  ASSERT_TRUE(WaitState(tty, v1::CONTAINER_EXITED));
  bad.clear();
  auto tty_records = ParseLog(ReadText(LogPath(pod_cfg, tty_cfg)), &bad);
  EXPECT_TRUE(bad.empty()) << ReadText(LogPath(pod_cfg, tty_cfg));
  EXPECT_EQ(JoinedLines(tty_records, "stdout"), (std::vector<std::string>{"on-tty", "err"}));
  EXPECT_TRUE(JoinedLines(tty_records, "stderr").empty());

  // No log_path: no log file, the container runs all the same.
  auto quiet = ContainerConfig("quiet", "busybox", {"sh", "-c", "echo nobody-reads-this"});
  quiet.clear_log_path();
  const std::string q = RunContainer(pod, pod_cfg, quiet);
  ASSERT_FALSE(q.empty());
  ASSERT_TRUE(WaitState(q, v1::CONTAINER_EXITED));
  EXPECT_EQ(ContainerStatus(q).log_path(), "");
  EXPECT_EQ(ContainerStatus(q).exit_code(), 0);
}

TEST_F(CriContainerIT, ReopenContainerLogLosesNoLine) {
  auto pod_cfg = PodConfig("rotate");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  auto cfg =
      ContainerConfig("counter", "busybox",
                      {"sh", "-c", "i=0; while :; do echo line-$i; i=$((i+1)); usleep 2000; done"});
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());
  const std::string log = LogPath(pod_cfg, cfg);
  auto lines = [](const std::string& path) { return Lines(ReadText(path)).size(); };
  ASSERT_TRUE(Eventually([&] { return lines(log) >= 50; }));
  // What the kubelet does: rename, then ReopenContainerLog; twice.
  for (const std::string suffix : {".1", ".2"}) {
    ASSERT_EQ(::rename(log.c_str(), (log + suffix).c_str()), 0);
    v1::ReopenContainerLogRequest req;
    req.set_container_id(id);
    v1::ReopenContainerLogResponse resp;
    auto st = Rt().ReopenContainerLog(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
    ASSERT_TRUE(Eventually([&] { return lines(log) >= 50; }));
  }
  ASSERT_TRUE(Stop(id, 0).ok());
  std::vector<std::string> bad;
  auto records = ParseLog(ReadText(log + ".1") + ReadText(log + ".2") + ReadText(log), &bad);
  EXPECT_TRUE(bad.empty());
  auto all = JoinedLines(records, "stdout");
  ASSERT_GE(all.size(), 150u);
  for (size_t i = 0; i < all.size(); ++i) {
    // The last line may be cut by the SIGKILL; every earlier one is whole and in sequence.
    if (i + 1 == all.size() && all[i] != "line-" + std::to_string(i)) break;
    ASSERT_EQ(all[i], "line-" + std::to_string(i)) << "line lost or reordered around rotation";
  }
  EXPECT_GT(lines(log + ".1"), 0u);
  EXPECT_GT(lines(log + ".2"), 0u);

  // Only a running container's log can be reopened.
  v1::ReopenContainerLogRequest req;
  req.set_container_id(id);
  v1::ReopenContainerLogResponse resp;
  auto st = Rt().ReopenContainerLog(Ctx().get(), req, &resp);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("not running"), std::string::npos) << Describe(st);
}

TEST_F(CriContainerIT, ExecSyncOutputExitCodesAndTimeout) {
  auto pod_cfg = PodConfig("exec");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  auto cfg = ContainerConfig("target", "cri", {"sleep", "3600"});
  cfg.set_working_dir("/tmp");
  auto* env = cfg.add_envs();
  env->set_key("FOO");
  env->set_value("bar");
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());

  auto r = ExecSync(id, {"sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(r.stdout(), "out\n");
  EXPECT_EQ(r.stderr(), "err\n");
  EXPECT_EQ(r.exit_code(), 7);
  // The container's process spec: cwd, env, user.
  EXPECT_EQ(Sh(id, "pwd; echo $FOO; id -u"), "/tmp\nbar\n1234\n");
  // Large output, whole.
  r = ExecSync(id, {"sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x"});
  EXPECT_EQ(r.stdout(), std::string(1 << 20, 'x'));
  // (Not testable through gRPC: the 16 MiB cap of each stream. A reply holding 16 MiB is
  // over berthd's 16 MiB send limit, containerd's defaults.DefaultMaxSendMsgSize too.)

  // Timeout: DeadlineExceeded, and the process is gone.
  v1::ExecSyncRequest req;
  req.set_container_id(id);
  for (const char* a : {"sleep", "61"}) req.add_cmd(a);
  req.set_timeout(1);
  v1::ExecSyncResponse resp;
  auto st = Rt().ExecSync(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(st);
  EXPECT_TRUE(Eventually([&] { return Sh(id, "ps -o args").find("sleep 61") == std::string::npos; },
                         std::chrono::seconds(30)))
      << Sh(id, "ps -o args");

  // Not running: refused.
  const std::string created =
      CreateContainer(pod, pod_cfg, ContainerConfig("idle", "busybox", {"sleep", "3600"}));
  ASSERT_FALSE(created.empty());
  req.set_container_id(created);
  req.set_timeout(0);
  st = Rt().ExecSync(Ctx().get(), req, &resp);
  EXPECT_FALSE(st.ok());
}

TEST_F(CriContainerIT, ContainerAndPodStats) {
  auto pod_cfg = PodConfig("stats");
  (*pod_cfg.mutable_labels())["stats"] = "yes";
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  auto cfg = ContainerConfig("busy", "busybox",
                             {"sh", "-c",
                              "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; "
                              "echo spun; exec sleep 3600"});
  (*cfg.mutable_labels())["kind"] = "busy";
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  const std::string idle =
      CreateContainer(pod, pod_cfg, ContainerConfig("idle", "busybox", {"sleep", "3600"}));
  ASSERT_FALSE(id.empty() || idle.empty());
  ASSERT_TRUE(WaitLog(LogPath(pod_cfg, cfg), "spun"));
  // Some traffic through eth0.
  Sh(id, "ping -c 1 -W 5 " + E().Gateway() + " >/dev/null || true");

  v1::ContainerStatsRequest creq;
  creq.set_container_id(id);
  v1::ContainerStatsResponse cresp;
  auto st = Rt().ContainerStats(Ctx().get(), creq, &cresp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  const auto& cs = cresp.stats();
  EXPECT_EQ(cs.attributes().id(), id);
  EXPECT_EQ(cs.attributes().metadata().name(), "busy");
  EXPECT_EQ(At(cs.attributes().labels(), "kind"), "busy");
  EXPECT_GT(cs.cpu().timestamp(), 0);
  EXPECT_GT(cs.cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(cs.memory().timestamp(), 0);
  EXPECT_GT(cs.memory().working_set_bytes().value(), 0u);
  EXPECT_GT(cs.memory().usage_bytes().value(), 0u);
  EXPECT_EQ(cs.writable_layer().fs_id().mountpoint(),
            E().D().Root() + "/io.containerd.snapshotter.v1.overlayfs");
  EXPECT_TRUE(cs.writable_layer().has_used_bytes());
  st = Rt().ContainerStats(Ctx().get(), creq, &cresp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_TRUE(cresp.stats().cpu().has_usage_nano_cores());

  v1::ListContainerStatsRequest lreq;
  lreq.mutable_filter()->set_pod_sandbox_id(pod);
  v1::ListContainerStatsResponse lresp;
  st = Rt().ListContainerStats(Ctx().get(), lreq, &lresp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  std::map<std::string, v1::ContainerStats> by_id;
  for (const auto& s : lresp.stats()) by_id[s.attributes().id()] = s;
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_GT(by_id[id].cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_FALSE(by_id[idle].has_cpu()) << "a created container has no task to measure";
  lreq.clear_filter();
  (*lreq.mutable_filter()->mutable_label_selector())["kind"] = "busy";
  st = Rt().ListContainerStats(Ctx().get(), lreq, &lresp);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(lresp.stats_size(), 1);
  EXPECT_EQ(lresp.stats(0).attributes().id(), id);

  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(pod);
  v1::PodSandboxStatsResponse presp;
  st = Rt().PodSandboxStats(Ctx().get(), preq, &presp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  const auto& ps = presp.stats();
  EXPECT_EQ(ps.attributes().id(), pod);
  EXPECT_EQ(At(ps.attributes().labels(), "stats"), "yes");
  EXPECT_GT(ps.linux().cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(ps.linux().memory().working_set_bytes().value(), 0u);
  EXPECT_EQ(ps.linux().network().default_interface().name(), "eth0");
  EXPECT_GT(ps.linux().network().default_interface().rx_bytes().value(), 0u);
  EXPECT_GT(ps.linux().network().default_interface().tx_bytes().value(), 0u);
  EXPECT_GE(ps.linux().process().process_count().value(), 1u);
  EXPECT_EQ(ps.linux().containers_size(), 2);

  v1::ListPodSandboxStatsRequest lpreq;
  (*lpreq.mutable_filter()->mutable_label_selector())["stats"] = "yes";
  v1::ListPodSandboxStatsResponse lpresp;
  st = Rt().ListPodSandboxStats(Ctx().get(), lpreq, &lpresp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(lpresp.stats_size(), 1);
  EXPECT_EQ(lpresp.stats(0).attributes().id(), pod);

  // A stopped pod has no stats.
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(pod);
  v1::StopPodSandboxResponse stop_resp;
  ASSERT_TRUE(Rt().StopPodSandbox(Ctx().get(), stop, &stop_resp).ok());
  st = Rt().ListPodSandboxStats(Ctx().get(), lpreq, &lpresp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(lpresp.stats_size(), 0);
}

TEST_F(CriContainerIT, BindMountsAndImageVolumes) {
  auto pod_cfg = PodConfig("mounts");
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  const std::string host_dir = E().Tmp() + "/mount-src";
  ASSERT_TRUE(fs::MkdirAll(host_dir, 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(host_dir + "/from-host", "host\n"));
  auto cfg = ContainerConfig("mounts", "cri", {"sleep", "3600"});
  cfg.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(0);
  auto* rw = cfg.add_mounts();
  rw->set_container_path("/rw");
  rw->set_host_path(host_dir);
  auto* ro = cfg.add_mounts();
  ro->set_container_path("/ro");
  ro->set_host_path(host_dir);
  ro->set_readonly(true);
  const std::string id = RunContainer(pod, pod_cfg, cfg);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Sh(id, "id -u"), "0\n");  // run_as_user over the image's USER
  EXPECT_EQ(Sh(id, "cat /ro/from-host /rw/from-host"), "host\nhost\n");
  Sh(id, "echo back > /rw/from-container");
  EXPECT_EQ(ReadText(host_dir + "/from-container"), "back\n");
  auto r = ExecSync(id, {"sh", "-c", "echo no > /ro/denied"});
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(r.stderr().find("Read-only file system"), std::string::npos) << r.stderr();
  // The image's VOLUME /vol starts with the image's content, and is writable.
  EXPECT_EQ(Sh(id, "cat /vol/seed; echo more > /vol/new; cat /vol/new"), "seed\nmore\n");
  auto s = ContainerStatus(id);
  ASSERT_EQ(s.mounts_size(), 2);
  EXPECT_EQ(s.mounts(1).container_path(), "/ro");
  EXPECT_TRUE(s.mounts(1).readonly());
}

TEST_F(CriContainerIT, TwoContainersShareThePodNetworkAndAHostPort) {
  auto pod_cfg = PodConfig("web");
  const int host_port = 20000 + static_cast<int>(::getpid() % 20000);
  auto* pm = pod_cfg.add_port_mappings();
  pm->set_protocol(v1::TCP);
  pm->set_container_port(80);
  pm->set_host_port(host_port);
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  const std::string ip = PodStatus(pod).network().ip();
  ASSERT_TRUE(ip.starts_with(E().SubnetPrefix())) << ip;
  const std::string server =
      RunContainer(pod, pod_cfg,
                   ContainerConfig("server", "busybox",
                                   {"sh", "-c",
                                    "mkdir -p /www && echo hello-from-pod > /www/index.html && "
                                    "exec httpd -f -p 80 -h /www"}));
  const std::string client =
      RunContainer(pod, pod_cfg, ContainerConfig("client", "busybox", {"sleep", "3600"}));
  ASSERT_FALSE(server.empty() || client.empty());

  // The other container of the pod reaches it on localhost.
  // (busybox 1.35's wget crashes with -T: no timeout option here.)
  std::string got;
  std::string err;
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = ExecSync(client, {"wget", "-q", "-O", "-", "http://127.0.0.1:80/"});
        got = r.stdout();
        err = r.stderr();
        return r.exit_code() == 0;
      },
      std::chrono::seconds(20)))
      << err << "\nthe pod's interfaces:\n"
      << ExecSync(client, {"ip", "addr"}).stdout();
  EXPECT_EQ(got, "hello-from-pod\n");
  // berthd's namespace reaches it on the pod IP, and on the host port of a local address (the
  // bridge's; portmap's DNAT of 127.0.0.1 would need route_localnet).
  auto direct = E().Net().Run({"curl", "-sS", "--max-time", "10", "http://" + ip + ":80/"});
  EXPECT_EQ(direct.out, "hello-from-pod\n") << direct.err;
  const std::string mapped_url = "http://" + E().Gateway() + ":" + std::to_string(host_port) + "/";
  auto mapped = E().Net().Run({"curl", "-sS", "--max-time", "10", mapped_url});
  EXPECT_EQ(mapped.out, "hello-from-pod\n") << mapped.err;
  auto rules = E().Net().Run({"iptables", "-t", "nat", "-S"}).out;
  EXPECT_NE(rules.find("--dport " + std::to_string(host_port)), std::string::npos) << rules;

  // Gone with the pod: the port mapping's rules included.
  RemovePod(pod);
  rules = E().Net().Run({"iptables", "-t", "nat", "-S"}).out;
  EXPECT_EQ(rules.find("--dport " + std::to_string(host_port)), std::string::npos) << rules;
  EXPECT_NE(E().Net().Run({"curl", "-sS", "--max-time", "3", mapped_url}).exit_code, 0);
}

}  // namespace
}  // namespace berth::testing
