#include "oci/seccomp.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/digest.h"
#include "common/fs.h"

namespace berth::oci {
namespace {

using json = nlohmann::json;

const SeccompHost kAmd64{"amd64", "6.1.0-18-amd64"};

Spec WithBounding(const std::vector<std::string>& caps) {
  Spec s = DefaultSpec("default", "c");
  s["process"]["capabilities"]["bounding"] = caps;
  return s;
}

// The 41 capabilities in kernel number order (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40).
std::vector<std::string> AllCaps() {
  return {"CAP_CHOWN",
          "CAP_DAC_OVERRIDE",
          "CAP_DAC_READ_SEARCH",
          "CAP_FOWNER",
          "CAP_FSETID",
          "CAP_KILL",
          "CAP_SETGID",
          "CAP_SETUID",
          "CAP_SETPCAP",
          "CAP_LINUX_IMMUTABLE",
          "CAP_NET_BIND_SERVICE",
          "CAP_NET_BROADCAST",
          "CAP_NET_ADMIN",
          "CAP_NET_RAW",
          "CAP_IPC_LOCK",
          "CAP_IPC_OWNER",
          "CAP_SYS_MODULE",
          "CAP_SYS_RAWIO",
          "CAP_SYS_CHROOT",
          "CAP_SYS_PTRACE",
          "CAP_SYS_PACCT",
          "CAP_SYS_ADMIN",
          "CAP_SYS_BOOT",
          "CAP_SYS_NICE",
          "CAP_SYS_RESOURCE",
          "CAP_SYS_TIME",
          "CAP_SYS_TTY_CONFIG",
          "CAP_MKNOD",
          "CAP_LEASE",
          "CAP_AUDIT_WRITE",
          "CAP_AUDIT_CONTROL",
          "CAP_SETFCAP",
          "CAP_MAC_OVERRIDE",
          "CAP_MAC_ADMIN",
          "CAP_SYSLOG",
          "CAP_WAKE_ALARM",
          "CAP_BLOCK_SUSPEND",
          "CAP_AUDIT_READ",
          "CAP_PERFMON",
          "CAP_BPF",
          "CAP_CHECKPOINT_RESTORE"};
}

// Go's json.Marshal of specs.LinuxSeccomp: keys in struct-field order, no whitespace.
std::string GoMarshal(const json& profile) {
  using ordered = nlohmann::ordered_json;
  auto copy = [](ordered& dst, const json& src, std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      if (src.contains(k)) dst[k] = ordered::parse(src[k].dump());
    }
  };
  ordered out = ordered::object();
  copy(out, profile,
       {"defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
        "listenerMetadata"});
  if (profile.contains("syscalls")) {
    ordered rules = ordered::array();
    for (const auto& r : profile["syscalls"]) {
      ordered rule = ordered::object();
      copy(rule, r, {"names", "action", "errnoRet"});
      if (r.contains("args")) {
        ordered args = ordered::array();
        for (const auto& a : r["args"]) {
          ordered arg = ordered::object();
          copy(arg, a, {"index", "value", "valueTwo", "op"});
          args.push_back(arg);
        }
        rule["args"] = args;
      }
      rules.push_back(rule);
    }
    out["syscalls"] = rules;
  }
  return out.dump();
}

std::string Sha256Hex(std::string_view data) {
  return std::string(Digest::FromBytes(data).Encoded());
}

size_t NameCount(const json& profile) {
  size_t n = 0;
  for (const auto& r : profile["syscalls"]) n += r["names"].size();
  return n;
}

TEST(DefaultSeccompProfile, DefaultCapsOnAmd64) {
  json p = DefaultSeccompProfile(WithBounding(DefaultCapabilities()), kAmd64);
  EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_FALSE(p.contains("defaultErrnoRet"));
  EXPECT_FALSE(p.contains("flags"));
  EXPECT_EQ(p["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  const json& rules = p["syscalls"];
  ASSERT_EQ(rules.size(), 11U);
  // The base rule: 349 names in the source's order, no args.
  const json& base = rules[0];
  ASSERT_EQ(base["names"].size(), 349U);
  EXPECT_EQ(base["names"][0], "accept");
  EXPECT_EQ(base["names"][1], "accept4");
  EXPECT_EQ(base["names"][100], "getrlimit");
  EXPECT_EQ(base["names"][101], "get_robust_list");
  EXPECT_EQ(base["names"][142], "_llseek");
  EXPECT_EQ(base["names"][348], "writev");
  EXPECT_EQ(base["action"], "SCMP_ACT_ALLOW");
  EXPECT_FALSE(base.contains("args"));
  // Five personality rules.
  const uint64_t personas[] = {0, 8, 131072, 131080, 4294967295ULL};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rules[1 + i],
              json({{"names", {"personality"}},
                    {"action", "SCMP_ACT_ALLOW"},
                    {"args", {{{"index", 0}, {"value", personas[i]}, {"op", "SCMP_CMP_EQ"}}}}}));
  }
  EXPECT_EQ(rules[6], json({{"names", {"ptrace"}}, {"action", "SCMP_ACT_ALLOW"}}));
  EXPECT_EQ(rules[7],
            json({{"names", {"arch_prctl", "modify_ldt"}}, {"action", "SCMP_ACT_ALLOW"}}));
  EXPECT_EQ(rules[8], json({{"names", {"chroot"}}, {"action", "SCMP_ACT_ALLOW"}}));
  EXPECT_EQ(
      rules[9],
      json({{"names", {"clone"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"args", {{{"index", 0}, {"value", 2114060288}, {"op", "SCMP_CMP_MASKED_EQ"}}}}}));
  EXPECT_EQ(rules[10],
            json({{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}}));
  EXPECT_EQ(NameCount(p), 360U);
}

// The compact Go JSON equals containerd's byte for byte (reference/seccomp-default.md §12).
TEST(DefaultSeccompProfile, GoBytesMatchContainerd) {
  struct Case {
    std::vector<std::string> bounding;
    size_t rules;
    size_t bytes;
    const char* sha256;
  };
  const Case cases[] = {
      {{}, 10, 5274, "a1f5f71910fede496dfec7b5e873b4fcb006ea086283957bff70db7bf809a8b5"},
      {DefaultCapabilities(), 11, 5321,
       "b9205bffcb342e2f4284221b4589f12172e875a6016ccfa5cf3909e5c0b9c948"},
      {AllCaps(), 22, 6249, "630b5026013253eda59ffbe2428576d2f965f7635bce5232bf9ab53ce2af86e3"},
  };
  for (const auto& c : cases) {
    json p = DefaultSeccompProfile(WithBounding(c.bounding), kAmd64);
    EXPECT_EQ(p["syscalls"].size(), c.rules) << c.bounding.size();
    std::string bytes = GoMarshal(p);
    EXPECT_EQ(bytes.size(), c.bytes) << c.bounding.size();
    EXPECT_EQ(Sha256Hex(bytes), c.sha256) << c.bounding.size();
  }
}

TEST(DefaultSeccompProfile, AllCapsHaveNoClonePair) {
  json p = DefaultSeccompProfile(WithBounding(AllCaps()), kAmd64);
  const json& rules = p["syscalls"];
  ASSERT_EQ(rules.size(), 22U);
  // Capability rules follow the bounding list's order.
  EXPECT_EQ(rules[8]["names"], json({"open_by_handle_at"}));
  EXPECT_EQ(rules[14]["names"][0], "bpf");  // CAP_SYS_ADMIN
  EXPECT_EQ(rules[14]["names"].size(), 24U);
  EXPECT_EQ(rules[21]["names"], json({"bpf"}));  // CAP_BPF
  for (const auto& r : rules) EXPECT_NE(r["action"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(NameCount(p), 407U);
}

TEST(DefaultSeccompProfile, EmptyOrMissingBounding) {
  EXPECT_EQ(DefaultSeccompProfile(WithBounding({}), kAmd64)["syscalls"].size(), 10U);
  Spec s = DefaultSpec("default", "c");
  s["process"].erase("capabilities");
  EXPECT_EQ(DefaultSeccompProfile(s, kAmd64)["syscalls"].size(), 10U);
}

TEST(DefaultSeccompProfile, DuplicatesAreKept) {
  json p = DefaultSeccompProfile(WithBounding({"CAP_SYS_PTRACE", "CAP_SYS_PTRACE"}), kAmd64);
  ASSERT_EQ(p["syscalls"].size(), 12U);
  EXPECT_EQ(p["syscalls"][8], p["syscalls"][9]);
  EXPECT_EQ(p["syscalls"][8]["names"].back(), "ptrace");
}

TEST(DefaultSeccompProfile, PtraceNeedsKernel48) {
  auto has_ptrace_rule = [](const std::string& release) {
    json p = DefaultSeccompProfile(WithBounding({}), {"amd64", release});
    for (const auto& r : p["syscalls"]) {
      if (r["names"] == json({"ptrace"})) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_ptrace_rule("4.8.0"));
  EXPECT_TRUE(has_ptrace_rule("5.10.0-23-amd64"));
  EXPECT_TRUE(has_ptrace_rule("6.1"));
  EXPECT_FALSE(has_ptrace_rule("4.7.10"));
  EXPECT_FALSE(has_ptrace_rule("3.18.0"));
  EXPECT_FALSE(has_ptrace_rule("6"));        // does not parse as %d.%d: left out
  EXPECT_FALSE(has_ptrace_rule("generic"));  // likewise
}

TEST(DefaultSeccompProfile, Architectures) {
  auto profile = [](const char* arch) {
    return DefaultSeccompProfile(WithBounding({}), {arch, "6.1.0"});
  };
  EXPECT_EQ(profile("arm64")["architectures"], json({"SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"}));
  EXPECT_EQ(profile("arm64")["syscalls"][7]["names"][0], "arm_fadvise64_64");
  EXPECT_EQ(profile("riscv64")["architectures"], json({"SCMP_ARCH_RISCV64"}));
  // ppc64le gets its rule but no architectures; 386 gets modify_ldt only.
  EXPECT_FALSE(profile("ppc64le").contains("architectures"));
  EXPECT_EQ(profile("ppc64le")["syscalls"][7]["names"], json({"sync_file_range2", "swapcontext"}));
  EXPECT_FALSE(profile("386").contains("architectures"));
  EXPECT_EQ(profile("386")["syscalls"][7]["names"], json({"modify_ldt"}));
  // s390x: clone's flags are argument 1.
  json s390x = profile("s390x");
  EXPECT_EQ(s390x["architectures"], json({"SCMP_ARCH_S390", "SCMP_ARCH_S390X"}));
  const json& rules = s390x["syscalls"];
  EXPECT_EQ(rules[rules.size() - 2]["args"][0]["index"], 1);
  // mips64: ENOSYS is 89; no arch rule.
  json mips = profile("mips64");
  EXPECT_EQ(mips["syscalls"].back()["errnoRet"], 89);
  EXPECT_EQ(mips["syscalls"].size(), 9U);
  // An unknown architecture: no architectures, no arch rule.
  EXPECT_FALSE(profile("loong64").contains("architectures"));
}

TEST(DefaultSeccompProfile, ThisHost) {
  SeccompHost host = CurrentSeccompHost();
  EXPECT_FALSE(host.arch.empty());
  EXPECT_FALSE(host.kernel_release.empty());
  Spec s = DefaultSpec("default", "c");
  WithDefaultSeccomp(s);
  EXPECT_EQ(s["linux"]["seccomp"], DefaultSeccompProfile(s, host));
  WithSeccompUnconfined(s);
  EXPECT_FALSE(s["linux"].contains("seccomp"));
}

TEST(SeccompSupported, ThisKernel) {
  // This host's runc applies seccomp filters; /proc/self/status says whether the kernel has them.
  auto status = fs::ReadFile("/proc/self/status");
  ASSERT_TRUE(status);
  if (status->find("Seccomp_filters:") == std::string::npos) {
    GTEST_SKIP() << "kernel does not report seccomp filter support";
  }
  EXPECT_TRUE(SeccompSupported());
}

class SeccompFile : public testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("seccomp-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<fs::TempDir>(std::move(*dir));
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_->Path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::unique_ptr<fs::TempDir> dir_;
};

TEST_F(SeccompFile, DecodesAsGoDoes) {
  // Docker-format keys are dropped, keys match case-insensitively, zero valueTwo and empty lists
  // disappear, errnoRet 0 stays (a pointer in Go).
  std::string path = Write("p.json", R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64"}],
    "Architectures": ["SCMP_ARCH_X86_64"],
    "flags": [],
    "syscalls": [
      {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0, "comment": "x",
       "args": [{"index": 1, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
      {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": []}
    ]})");
  Spec s = DefaultSpec("default", "c");
  ASSERT_TRUE(WithSeccompProfileFile(s, path));
  EXPECT_EQ(s["linux"]["seccomp"], json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
      {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0,
       "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
      {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
    ]})"));
}

TEST_F(SeccompFile, ErrorsNameTheFile) {
  Spec s = DefaultSpec("default", "c");
  std::string missing = dir_->Path() + "/missing.json";
  auto st = WithSeccompProfileFile(s, missing);
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kNotFound));
  EXPECT_NE(st.error().What().find("cannot load seccomp profile \"" + missing + "\""),
            std::string::npos)
      << st.error().What();

  for (const char* bad : {"{not json", R"({"syscalls": [{"names": "read"}]})",
                          R"({"defaultErrnoRet": -1})", R"({"defaultAction": 3})", "[]"}) {
    std::string path = Write("bad.json", bad);
    st = WithSeccompProfileFile(s, path);
    ASSERT_FALSE(st) << bad;
    EXPECT_TRUE(st.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_NE(st.error().What().find("decoding seccomp profile failed \"" + path + "\""),
              std::string::npos)
        << st.error().What();
  }
}

// runc on this host accepts the profile and runs a busybox under it.
TEST(DefaultSeccompProfile, RuncRunsBusyboxUnderIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_EQ(::access("/usr/sbin/runc", X_OK), 0) << "runc is missing: run make deps";
  ASSERT_EQ(::access("/bin/busybox", X_OK), 0)
      << "busybox is missing (busybox-static): run make deps";
  auto dir = fs::TempDir::Create("seccomp-runc-");
  ASSERT_TRUE(dir);
  const std::string bundle = dir->Path() + "/bundle";
  const std::string rootfs = bundle + "/rootfs";
  const std::string state = dir->Path() + "/state";
  std::filesystem::create_directories(rootfs + "/bin");
  std::filesystem::copy_file("/bin/busybox", rootfs + "/bin/busybox");
  std::filesystem::create_symlink("busybox", rootfs + "/bin/sh");
  const std::string id = "berth-seccomp-" + std::to_string(::getpid());

  Spec s = DefaultSpec("default", id);
  s["linux"].erase("cgroupsPath");  // runc's default /<id>: removed again by runc delete
  WithProcessArgs(s, {"/bin/sh", "-c", "echo ok; unshare -n true 2>/dev/null || echo denied"});
  WithRootFsPath(s, rootfs);
  WithDefaultSeccomp(s);
  std::ofstream(bundle + "/config.json") << s.dump();

  std::string cmd =
      "/usr/sbin/runc --root " + state + " run --bundle " + bundle + " " + id + " </dev/null 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  // Whatever happened, no container or state is left behind.
  std::string del = "/usr/sbin/runc --root " + state + " delete --force " + id + " >/dev/null 2>&1";
  (void)std::system(del.c_str());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "ok\ndenied\n");
}

}  // namespace
}  // namespace berth::oci
