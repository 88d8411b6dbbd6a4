#include "cri_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace berth::testing {
namespace {

constexpr const char* kPodNamespace = "berth-it";
constexpr const char* kCniNetwork = "berth-it";

std::string RandomHex(size_t bytes) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rng() & 0xff);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

int RandomInt(int lo, int hi) {
  static std::mt19937 rng{std::random_device{}()};
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

bool Write(const std::string& path, const std::string& text, unsigned mode = 0644) {
  if (!fs::WriteFileAtomic(path, text, mode)) {
    std::fprintf(stderr, "write %s failed\n", path.c_str());
    return false;
  }
  return true;
}

bool Mkdirs(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    if (!fs::MkdirAll(d, 0755)) {
      std::fprintf(stderr, "mkdir %s failed\n", d.c_str());
      return false;
    }
  }
  return true;
}

// The CNI plugin of the failing-network test: refuses ADD with a CNI error on stdout, accepts
// DEL (so the unwinding of a failed RunPodSandbox can release what the bridge set up).
constexpr const char* kFailPlugin = R"(#!/bin/sh
# berth CRI integration tests: a CNI plugin that refuses ADD.
cat >/dev/null
case "$CNI_COMMAND" in
  ADD) echo '{"cniVersion":"1.0.0","code":100,"msg":"berth-it-fail refuses ADD"}'; exit 1 ;;
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
)";

// containerd's documented conf_template shape (docs/cri/config.md), with host-local's data
// under the temp dir.
std::string Template(const std::string& ipam_dir) {
  return R"({
  "cniVersion": "1.0.0",
  "name": ")" +
         std::string(kCniNetwork) + R"(",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": ")" +
         ipam_dir + R"(",
        "ranges": [{{range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}],
        "routes": [{{range $i, $route := .Routes}}{{if $i}}, {{end}}{"dst": "{{$route}}"}{{end}}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
)";
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::unique_ptr<CriEnv>& SharedSlot() {
  static std::unique_ptr<CriEnv> env;
  return env;
}

// Tears the shared environment down after the last test (so its cleanup failures are reported
// by gtest, and nothing depends on static destruction order).
class SharedEnvTeardown : public ::testing::Environment {
 public:
  void TearDown() override { SharedSlot().reset(); }
};

[[maybe_unused]] ::testing::Environment* const kSharedEnvTeardown =
    ::testing::AddGlobalTestEnvironment(new SharedEnvTeardown);

}  // namespace

// ---- helpers

std::string Trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::string NsLink(const std::string& type) {
  char buf[128] = {};
  ssize_t n = ::readlink(("/proc/self/ns/" + type).c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> SubdirsDeepestFirst(const std::string& dir) {
  std::vector<std::string> out;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    for (const auto& name : DirEntries(dir + (rel.empty() ? "" : "/" + rel))) {
      std::string sub = rel.empty() ? name : rel + "/" + name;
      struct stat st {};
      if (::lstat((dir + "/" + sub).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        out.push_back(sub);
        todo.push_back(sub);
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    auto depth = [](const std::string& s) { return std::count(s.begin(), s.end(), '/'); };
    return depth(a) > depth(b);
  });
  return out;
}

std::vector<std::string> CgroupHierarchies() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    auto fields = Words(line.substr(0, sep));
    auto rest = Words(line.substr(sep + 3));
    if (fields.size() < 5 || rest.empty()) continue;
    if ((rest[0] == "cgroup" || rest[0] == "cgroup2") && fields[3] == "/") {
      out.push_back(fields[4]);
    }
  }
  return out;
}

std::string FixtureManifestDigest(const std::string& tag) {
  auto index = nlohmann::json::parse(ReadText(Fixtures() + "/oci/index.json"), nullptr, false);
  if (index.is_discarded()) return "";
  for (const auto& m : index.value("manifests", nlohmann::json::array())) {
    if (m.value("annotations", nlohmann::json::object())
            .value("org.opencontainers.image.ref.name", "") == tag) {
      return m.value("digest", "");
    }
  }
  return "";
}

nlohmann::json VerboseInfo(const std::map<std::string, std::string>& info) {
  auto it = info.find("info");
  if (it == info.end()) return nullptr;
  auto j = nlohmann::json::parse(it->second, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

std::unique_ptr<grpc::ClientContext> Ctx(std::chrono::seconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

std::string Describe(const grpc::Status& st) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int code = st.error_code();
  std::string name = code >= 0 && code <= 16 ? kNames[code] : std::to_string(code);
  return name + ": " + st.error_message();
}

// ---- TestNetns

std::unique_ptr<TestNetns> TestNetns::Create() {
  static std::atomic<int> n{0};
  // Namespaces of test processes that died without cleaning up.
  for (const auto& e : DirEntries("/run/netns")) {
    if (!e.starts_with("berth-cri-")) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(e.c_str() + 10));
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      Exec({"ip", "netns", "delete", e});
    }
  }
  std::string name = "berth-cri-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  auto add = Exec({"ip", "netns", "add", name});
  if (add.exit_code != 0) {
    std::fprintf(stderr, "ip netns add %s: %s\n", name.c_str(), add.err.c_str());
    return nullptr;
  }
  std::unique_ptr<TestNetns> ns(new TestNetns(name));
  auto lo = Exec({"ip", "-n", name, "link", "set", "lo", "up"});
  if (lo.exit_code != 0) {
    std::fprintf(stderr, "ip -n %s link set lo up: %s\n", name.c_str(), lo.err.c_str());
    return nullptr;
  }
  return ns;
}

TestNetns::~TestNetns() {
  auto r = Exec({"ip", "netns", "delete", name_});
  if (r.exit_code != 0)
    std::fprintf(stderr, "ip netns delete %s: %s\n", name_.c_str(), r.err.c_str());
}

RunResult TestNetns::Run(std::vector<std::string> argv, std::chrono::seconds timeout) const {
  argv.insert(argv.begin(), {"nsenter", "--net=" + Path(), "--"});
  return Exec(argv, "", timeout);
}

// ---- CriEnv

std::string CriEnv::Conflist() const {
  return R"({
  "cniVersion": "1.0.0",
  "name": ")" +
         std::string(kCniNetwork) + R"(",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": ")" +
         IpamDir() + R"(",
              "ranges": [[{"subnet": ")" +
         subnet_ + R"("}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
)";
}

std::string CriEnv::FailingConflist() const {
  // Another bridge and subnet: the bridge and host-local succeed, then berth-it-fail refuses.
  std::string subnet = "10.201." + subnet_.substr(7, subnet_.rfind('.') - 7) + ".0/24";
  return R"({"cniVersion": "1.0.0", "name": "berth-it-fail", "plugins": [
  {"type": "bridge", "bridge": "cni1", "isGateway": true,
   "ipam": {"type": "host-local", "dataDir": ")" +
         IpamDir() + R"(", "ranges": [[{"subnet": ")" + subnet + R"("}]]}},
  {"type": "berth-it-fail"}]}
)";
}

std::string CriEnv::ImageId(const std::string& tag) const {
  auto it = image_ids_.find(tag);
  return it == image_ids_.end() ? std::string() : it->second;
}

std::unique_ptr<CriEnv> CriEnv::Start(CriEnvOptions options, std::string* error) {
  auto fail = [&](const std::string& what) -> std::unique_ptr<CriEnv> {
    *error = what;
    return nullptr;
  };
  static std::atomic<int> n{0};
  if (Fixtures().empty()) return fail("building the fixture images failed");
  std::unique_ptr<CriEnv> env(new CriEnv());
  env->options_ = std::move(options);
  auto tmp = fs::TempDir::Create("berth-cri-");
  if (!tmp) return fail("temp dir");
  env->tmp_ = std::move(*tmp);
  ::chmod(env->Tmp().c_str(), 0755);  // bind-mount sources below it, for any container user
  env->net_ = TestNetns::Create();
  if (!env->net_) return fail("could not create a network namespace (ip netns add)");

  const int octet = RandomInt(1, 254);
  env->subnet_ = "10.200." + std::to_string(octet) + ".0/24";
  env->gateway_ = "10.200." + std::to_string(octet) + ".1";
  env->cgroup_root_ = "/berth-cri-it-" + std::to_string(::getpid()) + "-" + std::to_string(n++);

  const std::string& t = env->Tmp();
  if (!Mkdirs({t + "/cni/bin", env->ConfDir(), env->CniCacheDir(), env->IpamDir(), env->RuncRoot(),
               env->LogRoot(), t + "/certs.d"})) {
    return fail("mkdir in the temp dir");
  }
  // The CNI bin dir: Debian's plugins, plus berth-it-fail.
  for (const auto& p : DirEntries("/usr/lib/cni")) {
    if (::symlink(("/usr/lib/cni/" + p).c_str(), (t + "/cni/bin/" + p).c_str()) != 0) {
      return fail("symlink /usr/lib/cni/" + p);
    }
  }
  if (!Write(t + "/cni/bin/berth-it-fail", kFailPlugin, 0755)) return fail("write plugin");

  Registry::Options ro{.tags = env->options_.registry_tags, .netns = env->net_->Path()};
  env->registry_ = Registry::Start(ro);
  if (!env->registry_) return fail("the fixture registry did not start in the namespace");
  const std::string addr = env->registry_->Addr();
  if (!Mkdirs({t + "/certs.d/" + addr}) ||
      !Write(t + "/certs.d/" + addr + "/hosts.toml",
             "server = \"http://" + addr + "\"\n[host.\"http://" + addr +
                 "\"]\n  capabilities = [\"pull\", \"resolve\"]\n")) {
    return fail("hosts.toml");
  }
  if (env->options_.cni_from_template) {
    if (!Write(t + "/cni/template.conflist", Template(env->IpamDir()))) return fail("template");
  } else if (!Write(env->ConfDir() + "/10-containerd-net.conflist", env->Conflist())) {
    return fail("conflist");
  }

  const std::string sandbox_image = env->options_.sandbox_image_tag.empty()
                                        ? std::string()
                                        : env->Image(env->options_.sandbox_image_tag);
  const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
  std::string config = cri + "]\n  sandbox_image = \"" + sandbox_image +
                       "\"\n"
                       "  netns_mounts_under_state_dir = true\n"
                       // This host's root lacks CAP_SYS_RESOURCE: oom_score_adj -998 would fail.
                       "  restrict_oom_score_adj = true\n"
                       "  max_container_log_line_size = " +
                       std::to_string(env->options_.max_container_log_line_size) + "\n";
  for (const char* runtime : {"runc", "second"}) {
    config += cri + ".containerd.runtimes." + runtime +
              "]\n  runtime_type = \"io.containerd.runc.v2\"\n" + cri + ".containerd.runtimes." +
              runtime + ".options]\n  Root = \"" + env->RuncRoot() + "\"\n";
  }
  config += cri + ".cni]\n  bin_dir = \"" + t + "/cni/bin\"\n  conf_dir = \"" + env->ConfDir() +
            "\"\n  cache_dir = \"" + env->CniCacheDir() + "\"\n";
  if (env->options_.cni_from_template) {
    config += "  conf_template = \"" + t + "/cni/template.conflist\"\n";
  }
  config += cri + ".registry]\n  config_path = \"" + t + "/certs.d\"\n";

  env->daemon_ = Daemon::Create({.extra_config = config, .netns = env->net_->Path()});
  if (!env->daemon_) return fail("Daemon::Create");
  if (!env->daemon_->Start()) return fail("berthd did not start:\n" + env->daemon_->Log());
  if (!env->Connect()) return fail("connect");

  if (env->options_.cni_from_template) {
    cri_v1::StatusRequest sreq;
    sreq.set_verbose(true);
    auto st = env->Rt().Status(Ctx().get(), sreq, &env->status_before_);
    if (!st.ok()) return fail("Status: " + Describe(st));
    cri_v1::UpdateRuntimeConfigRequest ureq;
    ureq.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(env->subnet_);
    cri_v1::UpdateRuntimeConfigResponse uresp;
    st = env->Rt().UpdateRuntimeConfig(Ctx().get(), ureq, &uresp);
    if (!st.ok()) return fail("UpdateRuntimeConfig: " + Describe(st));
    st = env->Rt().Status(Ctx().get(), sreq, &env->status_after_);
    if (!st.ok()) return fail("Status: " + Describe(st));
  }
  for (const auto& tag : env->options_.pull_tags) {
    cri_v1::PullImageRequest req;
    req.mutable_image()->set_image(env->Image(tag));
    cri_v1::PullImageResponse resp;
    auto st = env->Img().PullImage(Ctx().get(), req, &resp);
    if (!st.ok()) return fail("PullImage " + env->Image(tag) + ": " + Describe(st));
    env->image_ids_[tag] = resp.image_ref();
  }
  return env;
}

bool CriEnv::Connect() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // ExecSync output up to 2 x 16 MiB (the kubelet's too)
  channel_ = grpc::CreateCustomChannel("unix:" + daemon_->Socket(),
                                       grpc::InsecureChannelCredentials(), args);
  rt_ = cri_v1::RuntimeService::NewStub(channel_);
  img_ = cri_v1::ImageService::NewStub(channel_);
  cri_v1::VersionRequest req;
  cri_v1::VersionResponse resp;
  auto st = rt_->Version(Ctx(std::chrono::seconds(30)).get(), req, &resp);
  if (!st.ok()) std::fprintf(stderr, "CRI Version: %s\n", Describe(st).c_str());
  return st.ok();
}

bool CriEnv::Restart() { return daemon_->Start() && Connect(); }

std::vector<std::string> CriEnv::ShimPids() const {
  std::vector<std::string> out;
  for (pid_t pid : FindProcesses({"-address " + daemon_->Socket()})) {
    out.push_back(std::to_string(pid));
  }
  return out;
}

std::vector<std::string> CriEnv::Leaks() {
  std::vector<std::string> out;
  if (daemon_->Running()) {
    cri_v1::ListPodSandboxResponse pods;
    auto st = Rt().ListPodSandbox(Ctx().get(), {}, &pods);
    if (!st.ok()) out.push_back("ListPodSandbox: " + Describe(st));
    for (const auto& p : pods.items()) {
      out.push_back("pod sandbox left: " + p.id() + " " + p.metadata().name());
    }
    cri_v1::ListContainersResponse ctrs;
    st = Rt().ListContainers(Ctx().get(), {}, &ctrs);
    if (!st.ok()) out.push_back("ListContainers: " + Describe(st));
    for (const auto& c : ctrs.containers()) {
      out.push_back("container left: " + c.id() + " " + c.metadata().name());
    }
  }
  for (const auto& e : DirEntries(NetnsDir())) out.push_back("pinned netns left: " + e);
  for (const auto& dir : {daemon_->Root(), daemon_->State(), Tmp()}) {
    for (const auto& m : MountsUnder(dir)) out.push_back("mount left: " + m);
  }
  for (const auto& net : DirEntries(IpamDir())) {
    for (const auto& f : DirEntries(IpamDir() + "/" + net)) {
      if (f != "lock" && !f.starts_with("last_reserved_ip")) {
        out.push_back("host-local allocation left: " + net + "/" + f);
      }
    }
  }
  for (const auto& f : DirEntries(CniCacheDir() + "/results")) {
    out.push_back("CNI result cache left: " + f);
  }
  // A pod's shim exits on its own once its last task is deleted: give it a moment.
  Eventually([&] { return ShimPids().empty(); }, std::chrono::seconds(10));
  for (const auto& pid : ShimPids()) {
    std::string cmd = ReadText("/proc/" + pid + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    out.push_back("shim left: pid " + pid + ": " + cmd);
  }
  for (const auto& e : DirEntries(RuncRoot() + "/k8s.io")) out.push_back("runc state left: " + e);
  // <root>/<pod>/<sandbox or container id>: the pod level is the test's own (the kubelet's).
  for (const auto& h : CgroupHierarchies()) {
    for (const auto& sub : SubdirsDeepestFirst(h + cgroup_root_)) {
      if (sub.find('/') != std::string::npos) {
        out.push_back("cgroup left: " + h + cgroup_root_ + "/" + sub);
      }
    }
  }
  for (const auto& dir : {CriRoot() + "/sandboxes", CriRoot() + "/containers",
                          CriState() + "/sandboxes", CriState() + "/containers"}) {
    for (const auto& e : DirEntries(dir)) out.push_back("CRI directory left: " + dir + "/" + e);
  }
  return out;
}

void CriEnv::ForceCleanup() {
  if (daemon_->Running()) {
    cri_v1::ListPodSandboxResponse pods;
    if (Rt().ListPodSandbox(Ctx().get(), {}, &pods).ok()) {
      for (const auto& p : pods.items()) {
        cri_v1::StopPodSandboxRequest sreq;
        sreq.set_pod_sandbox_id(p.id());
        cri_v1::StopPodSandboxResponse sresp;
        (void)Rt().StopPodSandbox(Ctx().get(), sreq, &sresp);
        cri_v1::RemovePodSandboxRequest rreq;
        rreq.set_pod_sandbox_id(p.id());
        cri_v1::RemovePodSandboxResponse rresp;
        (void)Rt().RemovePodSandbox(Ctx().get(), rreq, &rresp);
      }
    }
  }
  const std::string runc_root = RuncRoot() + "/k8s.io";
  for (const auto& id : DirEntries(runc_root)) {
    Exec({"runc", "--root", runc_root, "delete", "--force", id});
  }
  for (const auto& pid : ShimPids()) {
    pid_t p = static_cast<pid_t>(std::atoi(pid.c_str()));
    ::kill(p, SIGKILL);
    Eventually([&] { return !ProcessAlive(p); }, std::chrono::seconds(10));
  }
  for (const auto& dir : {daemon_->Root(), daemon_->State(), Tmp()}) {
    for (const auto& m : MountsUnder(dir)) ::umount2(m.c_str(), MNT_DETACH);
  }
  (void)RemoveCgroup("");
}

bool CriEnv::RemoveCgroup(const std::string& rel) {
  bool ok = true;
  for (const auto& h : CgroupHierarchies()) {
    const std::string top = h + cgroup_root_ + (rel.empty() ? "" : "/" + rel);
    for (const auto& sub : SubdirsDeepestFirst(top)) {
      ok = false;  // a cgroup below it: left behind by whatever used it
      ::rmdir((top + "/" + sub).c_str());
    }
    if (::rmdir(top.c_str()) != 0 && errno != ENOENT) ok = false;
  }
  return ok;
}

CriEnv::~CriEnv() {
  if (daemon_) {
    if (!Leaks().empty()) ForceCleanup();
    daemon_->Stop();
    ForceCleanup();  // whatever berthd left on its way out (nothing, normally)
  }
  (void)RemoveCgroup("");
  registry_.reset();
  daemon_.reset();
  net_.reset();
}

CriEnv* SharedCriEnv(const CriEnvOptions& options, std::string* error) {
  static std::string start_error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    SharedSlot() = CriEnv::Start(options, &start_error);
  }
  if (!SharedSlot() && error != nullptr) *error = start_error;
  return SharedSlot().get();
}

// ---- CriTest

void CriTest::SetUp() {
  std::string error;
  env_ = SharedCriEnv(Options(), &error);
  ASSERT_NE(env_, nullptr) << "CRI test environment: " << error;
}

void CriTest::TearDown() {
  if (env_ == nullptr) return;
  for (auto it = pods_.rbegin(); it != pods_.rend(); ++it) {
    cri_v1::StopPodSandboxRequest sreq;
    sreq.set_pod_sandbox_id(*it);
    cri_v1::StopPodSandboxResponse sresp;
    auto st = Rt().StopPodSandbox(Ctx().get(), sreq, &sresp);
    EXPECT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::NOT_FOUND)
        << "StopPodSandbox " << *it << ": " << Describe(st);
    cri_v1::RemovePodSandboxRequest rreq;
    rreq.set_pod_sandbox_id(*it);
    cri_v1::RemovePodSandboxResponse rresp;
    st = Rt().RemovePodSandbox(Ctx().get(), rreq, &rresp);
    EXPECT_TRUE(st.ok()) << "RemovePodSandbox " << *it << ": " << Describe(st);
  }
  pods_.clear();
  for (const auto& cg : cgroups_) {
    EXPECT_TRUE(E().RemoveCgroup(cg))
        << "cgroup " << E().CgroupRoot() << "/" << cg << " could not be removed";
  }
  cgroups_.clear();
  auto leaks = E().Leaks();
  std::string text;
  for (const auto& l : leaks) text += "\n  " + l;
  EXPECT_TRUE(leaks.empty()) << "left behind after the test:" << text;
  if (!leaks.empty()) E().ForceCleanup();
}

cri_v1::PodSandboxConfig CriTest::PodConfig(const std::string& name) {
  static std::atomic<int> n{0};
  const std::string unique = name + "-" + std::to_string(n++);
  cri_v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_uid(RandomHex(16));
  c.mutable_metadata()->set_namespace_(kPodNamespace);
  c.mutable_metadata()->set_attempt(0);
  c.set_hostname(name);
  c.set_log_directory(E().LogRoot() + "/" + unique);
  c.mutable_linux()->set_cgroup_parent(E().CgroupRoot() + "/" + unique);
  cgroups_.push_back(unique);
  return c;
}

grpc::Status CriTest::TryRunPod(const cri_v1::PodSandboxConfig& config, std::string* id,
                                const std::string& handler) {
  cri_v1::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  req.set_runtime_handler(handler);
  cri_v1::RunPodSandboxResponse resp;
  auto st = Rt().RunPodSandbox(Ctx().get(), req, &resp);
  if (st.ok()) {
    pods_.push_back(resp.pod_sandbox_id());
    pod_cgroups_[resp.pod_sandbox_id()] =
        config.linux().cgroup_parent().substr(E().CgroupRoot().size() + 1);
  }
  if (id != nullptr) *id = resp.pod_sandbox_id();
  return st;
}

std::string CriTest::RunPod(const cri_v1::PodSandboxConfig& config, const std::string& handler) {
  std::string id;
  auto st = TryRunPod(config, &id, handler);
  if (!st.ok()) {
    ADD_FAILURE() << "RunPodSandbox " << config.metadata().name() << ": " << Describe(st);
    return "";
  }
  return id;
}

void CriTest::RemovePod(const std::string& id) {
  cri_v1::StopPodSandboxRequest sreq;
  sreq.set_pod_sandbox_id(id);
  cri_v1::StopPodSandboxResponse sresp;
  auto st = Rt().StopPodSandbox(Ctx().get(), sreq, &sresp);
  EXPECT_TRUE(st.ok()) << "StopPodSandbox: " << Describe(st);
  cri_v1::RemovePodSandboxRequest rreq;
  rreq.set_pod_sandbox_id(id);
  cri_v1::RemovePodSandboxResponse rresp;
  st = Rt().RemovePodSandbox(Ctx().get(), rreq, &rresp);
  EXPECT_TRUE(st.ok()) << "RemovePodSandbox: " << Describe(st);
  if (st.ok()) pods_.erase(std::remove(pods_.begin(), pods_.end(), id), pods_.end());
  if (auto it = pod_cgroups_.find(id); it != pod_cgroups_.end()) {
    EXPECT_TRUE(E().RemoveCgroup(it->second))
        << "the pod's cgroup parent still holds cgroups after RemovePodSandbox";
  }
}

cri_v1::PodSandboxStatus CriTest::PodStatus(const std::string& id,
                                            std::map<std::string, std::string>* info) {
  cri_v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(info != nullptr);
  cri_v1::PodSandboxStatusResponse resp;
  auto st = Rt().PodSandboxStatus(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << "PodSandboxStatus " << id << ": " << Describe(st);
  if (info != nullptr) *info = {resp.info().begin(), resp.info().end()};
  return resp.status();
}

cri_v1::ContainerConfig CriTest::ContainerConfig(const std::string& name, const std::string& tag,
                                                 const std::vector<std::string>& command) {
  cri_v1::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image(E().Image(tag));
  for (const auto& a : command) c.add_command(a);
  c.set_log_path(name + "/0.log");  // the kubelet's layout: <container name>/<restart count>.log
  return c;
}

grpc::Status CriTest::TryCreateContainer(const std::string& pod,
                                         const cri_v1::PodSandboxConfig& pod_config,
                                         const cri_v1::ContainerConfig& config, std::string* id) {
  cri_v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod);
  *req.mutable_config() = config;
  *req.mutable_sandbox_config() = pod_config;
  cri_v1::CreateContainerResponse resp;
  auto st = Rt().CreateContainer(Ctx().get(), req, &resp);
  if (id != nullptr) *id = resp.container_id();
  return st;
}

std::string CriTest::CreateContainer(const std::string& pod,
                                     const cri_v1::PodSandboxConfig& pod_config,
                                     const cri_v1::ContainerConfig& config) {
  std::string id;
  auto st = TryCreateContainer(pod, pod_config, config, &id);
  if (!st.ok()) {
    ADD_FAILURE() << "CreateContainer " << config.metadata().name() << ": " << Describe(st);
    return "";
  }
  return id;
}

grpc::Status CriTest::StartContainer(const std::string& id) {
  cri_v1::StartContainerRequest req;
  req.set_container_id(id);
  cri_v1::StartContainerResponse resp;
  return Rt().StartContainer(Ctx().get(), req, &resp);
}

std::string CriTest::RunContainer(const std::string& pod,
                                  const cri_v1::PodSandboxConfig& pod_config,
                                  const cri_v1::ContainerConfig& config) {
  std::string id = CreateContainer(pod, pod_config, config);
  if (id.empty()) return "";
  auto st = StartContainer(id);
  if (!st.ok()) {
    ADD_FAILURE() << "StartContainer " << config.metadata().name() << ": " << Describe(st);
    return "";
  }
  return id;
}

cri_v1::ContainerStatus CriTest::ContainerStatus(const std::string& id,
                                                 std::map<std::string, std::string>* info) {
  cri_v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(info != nullptr);
  cri_v1::ContainerStatusResponse resp;
  auto st = Rt().ContainerStatus(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << "ContainerStatus " << id << ": " << Describe(st);
  if (info != nullptr) *info = {resp.info().begin(), resp.info().end()};
  return resp.status();
}

int CriTest::ContainerPid(const std::string& id) {
  std::map<std::string, std::string> info;
  ContainerStatus(id, &info);
  auto j = VerboseInfo(info);
  return j.is_object() ? j.value("pid", 0) : 0;
}

bool CriTest::WaitState(const std::string& id, cri_v1::ContainerState state,
                        std::chrono::seconds limit) {
  return Eventually(
      [&] {
        cri_v1::ContainerStatusRequest req;
        req.set_container_id(id);
        cri_v1::ContainerStatusResponse resp;
        return Rt().ContainerStatus(Ctx().get(), req, &resp).ok() && resp.status().state() == state;
      },
      limit);
}

cri_v1::ExecSyncResponse CriTest::ExecSync(const std::string& id,
                                           const std::vector<std::string>& cmd, int64_t timeout) {
  cri_v1::ExecSyncRequest req;
  req.set_container_id(id);
  for (const auto& a : cmd) req.add_cmd(a);
  req.set_timeout(timeout);
  cri_v1::ExecSyncResponse resp;
  auto st = Rt().ExecSync(Ctx(std::chrono::seconds(120 + timeout)).get(), req, &resp);
  EXPECT_TRUE(st.ok()) << "ExecSync " << cmd.back() << ": " << Describe(st);
  return resp;
}

std::string CriTest::Sh(const std::string& id, const std::string& script) {
  auto r = ExecSync(id, {"sh", "-c", script});
  EXPECT_EQ(r.exit_code(), 0) << "sh -c " << ShellQuote(script) << "\nstdout: " << r.stdout()
                              << "\nstderr: " << r.stderr();
  return r.stdout();
}

}  // namespace berth::testing
