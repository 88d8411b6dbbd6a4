#include "oci/spec.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::oci {
namespace {

using json = nlohmann::json;

// `ctr oci spec` of containerd 1.6.20 (namespace "default", no id), verbatim.
constexpr const char* kCtrOciSpec = R"({
    "ociVersion": "1.0.2-dev",
    "process": {
        "user": {"uid": 0, "gid": 0},
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD",
                "CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
            "effective": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD",
                "CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
            "permitted": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD",
                "CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true
    },
    "root": {"path": "rootfs"},
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid","noexec","nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid","strictatime","mode=755","size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid","noexec","nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid","noexec","nodev","ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid","strictatime","mode=755","size=65536k"]}
    ],
    "linux": {
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "cgroupsPath": "/default",
        "namespaces": [{"type": "pid"},{"type": "ipc"},{"type": "uts"},{"type": "mount"},
                       {"type": "network"}],
        "maskedPaths": ["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys",
            "/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug",
            "/sys/firmware","/proc/scsi"],
        "readonlyPaths": ["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]
    }
})";

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(DefaultSpec, EqualsCtrOciSpec) {
  EXPECT_EQ(DefaultSpec("default", ""), json::parse(kCtrOciSpec));
}

// The real ctr, when installed: its output is the reference (JSON equality: key order and
// whitespace are not part of the contract).
TEST(DefaultSpec, EqualsLiveCtrOciSpec) {
  ASSERT_EQ(::access("/usr/bin/ctr", X_OK), 0)
      << "/usr/bin/ctr is missing (Debian package containerd): run make deps";
  std::string out = RunCommand("/usr/bin/ctr oci spec 2>/dev/null");
  json live = json::parse(out, nullptr, false);
  ASSERT_FALSE(live.is_discarded()) << out;
  EXPECT_EQ(DefaultSpec("default", ""), live);
}

TEST(DefaultSpec, CgroupsPathNamesNamespaceAndId) {
  EXPECT_EQ(DefaultSpec("ns1", "web")["linux"]["cgroupsPath"], "/ns1/web");
}

TEST(Env, ReplaceOrAppend) {
  EXPECT_EQ(ReplaceOrAppendEnv({"PATH=/bin", "A=1", "B=2"}, {"A=3", "C=4", "B"}),
            (std::vector<std::string>{"PATH=/bin", "A=3", "C=4"}));
  EXPECT_EQ(ReplaceOrAppendEnv({}, {"X"}), std::vector<std::string>{});
}

TEST(Env, WithEnvAndFile) {
  Spec s = DefaultSpec("default", "c");
  WithEnv(s, {});
  EXPECT_FALSE(s["process"].contains("env"));
  WithEnv(s, {"A=1", "B=2"});
  auto dir = fs::TempDir::Create("oci-test-");
  ASSERT_TRUE(dir);
  std::string path = dir->Path() + "/env";
  std::ofstream(path) << "B=3\nC=4\r\nA\n";
  ASSERT_TRUE(WithEnvFile(s, path));
  EXPECT_EQ(s["process"]["env"], json({"B=3", "C=4"}));
  auto missing = WithEnvFile(s, dir->Path() + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
}

TEST(Process, ArgsCwdTtyPrivs) {
  Spec s = DefaultSpec("default", "c");
  WithProcessArgs(s, {"echo", "hi"});
  WithProcessCwd(s, "/tmp");
  WithTty(s);
  WithNewPrivileges(s);
  EXPECT_EQ(s["process"]["args"], json({"echo", "hi"}));
  EXPECT_EQ(s["process"]["cwd"], "/tmp");
  EXPECT_EQ(s["process"]["terminal"], true);
  EXPECT_EQ(s["process"]["env"], json({"TERM=xterm"}));
  EXPECT_FALSE(s["process"].contains("noNewPrivileges"));
}

TEST(Capabilities, AddDrop) {
  Spec s = DefaultSpec("default", "c");
  WithAddedCapabilities(s, {"CAP_SYS_ADMIN", "CAP_KILL"});
  WithDroppedCapabilities(s, {"CAP_CHOWN"});
  for (const char* set : {"bounding", "effective", "permitted"}) {
    auto caps = s["process"]["capabilities"][set];
    EXPECT_EQ(caps.size(), 14U) << set;
    EXPECT_EQ(caps.back(), "CAP_SYS_ADMIN");
    EXPECT_EQ(caps.front(), "CAP_DAC_OVERRIDE");
  }
}

TEST(Mounts, ParseMountFlag) {
  auto m = ParseMountFlag("type=bind,src=/tmp,dst=/host,options=rbind:ro");
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_EQ(MountJson(*m), json({{"destination", "/host"},
                                 {"type", "bind"},
                                 {"source", "/tmp"},
                                 {"options", {"rbind", "ro"}}}));
  auto bad = ParseMountFlag("type=bind,oops");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().What(), "invalid mount specification: expected key=val");
  auto unknown = ParseMountFlag("size=1");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().What(), "mount option \"size\" not supported");
  auto quoted = ParseMountFlag(R"("src=/a,b",dst=/c)");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->source, "/a,b");
}

TEST(Mounts, WithMountsAppends) {
  Spec s = DefaultSpec("default", "c");
  WithMounts(s, {{"/data", "bind", "/srv", {"rbind", "rw"}}});
  EXPECT_EQ(s["mounts"].size(), 8U);
  EXPECT_EQ(s["mounts"].back()["destination"], "/data");
}

TEST(Namespaces, HostNetwork) {
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithHostNetwork(s));
  for (const auto& ns : s["linux"]["namespaces"]) EXPECT_NE(ns["type"], "network");
  EXPECT_EQ(s["linux"]["namespaces"].size(), 4U);
  auto n = s["mounts"].size();
  EXPECT_EQ(s["mounts"][n - 2], json({{"destination", "/etc/hosts"},
                                      {"type", "bind"},
                                      {"source", "/etc/hosts"},
                                      {"options", {"rbind", "ro"}}}));
  EXPECT_EQ(s["mounts"][n - 1]["destination"], "/etc/resolv.conf");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_EQ(s["process"]["env"], json({std::string("HOSTNAME=") + host}));
}

TEST(Namespaces, JoinByPath) {
  Spec s = DefaultSpec("default", "c");
  WithLinuxNamespace(s, "network", "/proc/1/ns/net");
  WithLinuxNamespace(s, "cgroup", "");
  EXPECT_EQ(s["linux"]["namespaces"][4], json({{"type", "network"}, {"path", "/proc/1/ns/net"}}));
  EXPECT_EQ(s["linux"]["namespaces"][5], json({{"type", "cgroup"}}));
}

TEST(Devices, DefaultUnixDevices) {
  Spec s = DefaultSpec("default", "c");
  WithDefaultUnixDevices(s);
  const auto& devs = s["linux"]["resources"]["devices"];
  ASSERT_EQ(devs.size(), 10U);
  EXPECT_EQ(devs[1],
            json({{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}}));
  EXPECT_EQ(devs[8], json({{"allow", true}, {"type", "c"}, {"major", 136}, {"access", "rwm"}}));
}

TEST(Devices, Privileged) {
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithPrivilegedAll(s));
  EXPECT_FALSE(s["linux"].contains("maskedPaths"));
  EXPECT_FALSE(s["linux"].contains("readonlyPaths"));
  EXPECT_EQ(s["linux"]["resources"]["devices"], json::parse(R"([{"allow":true,"access":"rwm"}])"));
  EXPECT_EQ(s["mounts"][5]["options"], json({"nosuid", "noexec", "nodev", "rw"}));
  auto caps = CurrentCapabilities();
  ASSERT_TRUE(caps);
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json(*caps));
  if (::geteuid() == 0) {
    EXPECT_NE(std::find(caps->begin(), caps->end(), "CAP_SYS_ADMIN"), caps->end());
  }
  // /dev/null is a host device and is listed with its numbers.
  bool found = false;
  for (const auto& d : s["linux"]["devices"]) {
    if (d["path"] == "/dev/null") {
      found = true;
      EXPECT_EQ(d["type"], "c");
      EXPECT_EQ(d["major"], 1);
      EXPECT_EQ(d["minor"], 3);
    }
    EXPECT_NE(d["path"], "/dev/console");
    EXPECT_FALSE(d["path"].get<std::string>().starts_with("/dev/pts/"));
  }
  EXPECT_TRUE(found);
}

TEST(Resources, MemoryAndCpu) {
  Spec s = DefaultSpec("default", "c");
  WithMemoryLimit(s, 64 << 20);
  WithCpus(s, 1.5);
  WithCpuShares(s, 1024);
  EXPECT_EQ(s["linux"]["resources"]["memory"]["limit"], 64 << 20);
  EXPECT_EQ(s["linux"]["resources"]["cpu"],
            json({{"quota", 150000}, {"period", 100000}, {"shares", 1024}}));
  WithCpus(s, 0);  // no-op
  EXPECT_EQ(s["linux"]["resources"]["cpu"]["quota"], 150000);
}

TEST(Misc, AnnotationsCgroupRootfs) {
  Spec s = DefaultSpec("default", "c");
  WithAnnotations(s, {});
  EXPECT_FALSE(s.contains("annotations"));
  WithAnnotations(s, {{"a", "1"}});
  WithAnnotations(s, {{"b", "2"}, {"a", "3"}});
  EXPECT_EQ(s["annotations"], json({{"a", "3"}, {"b", "2"}}));
  WithCgroup(s, "/custom");
  EXPECT_EQ(s["linux"]["cgroupsPath"], "/custom");
  WithRootFsPath(s, "/srv/root");
  WithRootFsReadonly(s);
  EXPECT_EQ(s["root"], json({{"path", "/srv/root"}, {"readonly", true}}));
}

// A tiny rootfs with /etc/passwd and /etc/group (and a symlink that tries to leave it).
class UserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = fs::TempDir::Create("oci-root-");
    ASSERT_TRUE(d);
    dir_ = std::make_unique<fs::TempDir>(std::move(*d));
    ASSERT_EQ(::mkdir((Root() + "/etc").c_str(), 0755), 0);
    std::ofstream(Root() + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                             "daemon:x:1:1::/:/bin/false\n"
                                             "  \n"
                                             "app:x:1000:1001:App:/home/app:/bin/sh\n";
    std::ofstream(Root() + "/etc/group") << "root:x:0:\n"
                                            "wheel:x:10:app,root\n"
                                            "audio:x:29:app\n"
                                            "app:x:1001:app\n"
                                            "staff:x:50:\n";
  }
  std::string Root() const { return dir_->Path(); }
  std::unique_ptr<fs::TempDir> dir_;
};

TEST_F(UserTest, Parsers) {
  auto users = ParsePasswd("a:x:5:6\nbad\n\nb:x:x:7:g:h:s\n");
  ASSERT_EQ(users.size(), 3U);
  EXPECT_EQ(users[0].uid, 5U);
  EXPECT_EQ(users[1].name, "bad");
  EXPECT_EQ(users[2].uid, 0U);  // Atoi errors are ignored as libcontainer/user does
  auto groups = ParseGroup("g:x:9:a,b\n");
  ASSERT_EQ(groups.size(), 1U);
  EXPECT_EQ(groups[0].members, (std::vector<std::string>{"a", "b"}));
}

TEST_F(UserTest, ByName) {
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithUser(s, "app", Root()));
  EXPECT_EQ(s["process"]["user"], json({{"uid", 1000}, {"gid", 1001}, {"additionalGids", {1001}}}));
  auto missing = WithUser(s, "nobody", Root());
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
}

TEST_F(UserTest, ByUidListedAndUnlisted) {
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithUser(s, "1", Root()));
  EXPECT_EQ(s["process"]["user"]["uid"], 1);
  EXPECT_EQ(s["process"]["user"]["gid"], 1);
  ASSERT_TRUE(WithUser(s, "4242", Root()));
  EXPECT_EQ(s["process"]["user"], json({{"uid", 4242}, {"gid", 0}, {"additionalGids", {0}}}));
}

TEST_F(UserTest, UserGroupPairs) {
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithUser(s, "app:audio", Root()));
  EXPECT_EQ(s["process"]["user"]["uid"], 1000);
  EXPECT_EQ(s["process"]["user"]["gid"], 29);
  ASSERT_TRUE(WithUser(s, "5:7", RootFs{}));  // numeric: no lookup
  EXPECT_EQ(s["process"]["user"], json({{"uid", 5}, {"gid", 7}, {"additionalGids", {7}}}));
  EXPECT_FALSE(WithUser(s, "app:nogroup", Root()));
  auto bad = WithUser(s, "a:b:c", Root());
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
}

TEST_F(UserTest, AdditionalGids) {
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithUser(s, "app", Root()));
  ASSERT_TRUE(WithAdditionalGids(s, "1000", Root()));
  EXPECT_EQ(s["process"]["user"]["additionalGids"], json({1001, 10, 29}));
  ASSERT_TRUE(WithAdditionalGids(s, "4242", Root()));  // unknown uid: primary only
  EXPECT_EQ(s["process"]["user"]["additionalGids"], json({1001}));
}

TEST_F(UserTest, SymlinkCannotEscapeRoot) {
  ASSERT_EQ(::unlink((Root() + "/etc/passwd").c_str()), 0);
  // /etc/passwd -> /etc/hostname of the *host* would be read without RESOLVE_IN_ROOT; inside the
  // root it points at a missing file, so the lookup says NotFound.
  ASSERT_EQ(::symlink("/etc/hostname", (Root() + "/etc/passwd").c_str()), 0);
  auto text = ReadInRoot(Root(), "/etc/passwd");
  ASSERT_FALSE(text);
  EXPECT_TRUE(text.error().Is(Errc::kNotFound));
}

TEST_F(UserTest, ImageConfig) {
  auto config = ParseImageConfig(R"({"architecture":"amd64","config":{
      "Env":["PATH=/bin","FOO=img"],"Entrypoint":["/entry"],"Cmd":["a","b"],
      "WorkingDir":"/work","User":"app","StopSignal":"SIGQUIT","Labels":{"l":"v"}}})");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->stop_signal, "SIGQUIT");
  EXPECT_EQ(config->labels.at("l"), "v");
  Spec s = DefaultSpec("default", "c");
  WithEnv(s, {"FOO=cli", "BAR=1"});
  ASSERT_TRUE(WithImageConfig(s, *config, Root()));
  EXPECT_EQ(s["process"]["env"], json({"PATH=/bin", "FOO=cli", "BAR=1"}));
  EXPECT_EQ(s["process"]["args"], json({"/entry", "a", "b"}));
  EXPECT_EQ(s["process"]["cwd"], "/work");
  EXPECT_EQ(s["process"]["user"],
            json({{"uid", 1000}, {"gid", 1001}, {"additionalGids", {1001, 10, 29}}}));

  Spec t = DefaultSpec("default", "c");
  ASSERT_TRUE(WithImageConfig(t, *config, Root(), {"x"}));
  EXPECT_EQ(t["process"]["args"], json({"/entry", "x"}));
}

TEST_F(UserTest, ImageConfigDefaults) {
  auto config = ParseImageConfig(R"({"config":{"Cmd":["sh"]}})");
  ASSERT_TRUE(config);
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithImageConfig(s, *config, Root()));
  EXPECT_EQ(s["process"]["env"], json({std::string(kDefaultPathEnv)}));
  EXPECT_EQ(s["process"]["cwd"], "/");
  // root is listed in wheel: its supplemental groups come from the image's /etc/group.
  EXPECT_EQ(s["process"]["user"], json({{"uid", 0}, {"gid", 0}, {"additionalGids", {0, 10}}}));
  EXPECT_FALSE(ParseImageConfig("[1]"));
  EXPECT_FALSE(ParseImageConfig(R"({"config":{"Cmd":"sh"}})"));
  EXPECT_TRUE(ParseImageConfig(R"({"config":null})"));
}

}  // namespace
}  // namespace berth::oci
