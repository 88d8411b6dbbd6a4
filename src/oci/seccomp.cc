// The default seccomp profile (contrib/seccomp/seccomp_default.go @ v1.6.20), custom profiles
// (contrib/seccomp/seccomp.go) and the kernel probe (pkg/seccomp/seccomp_linux.go).
#include "oci/seccomp.h"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::oci {
namespace {

using json = nlohmann::json;

// The base allow list, in the source's order (not byte order: `getrlimit` before
// `get_robust_list`, ...); the order is kept so the JSON equals containerd's.
constexpr const char* kBaseNames[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
};

// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
// CLONE_NEWNET: clone is allowed only without any of them.
constexpr uint64_t kCloneNamespaceMask = 0x7E020000;

json Rule(std::vector<std::string> names) {
  return json{{"names", std::move(names)}, {"action", "SCMP_ACT_ALLOW"}};
}

json ArgRule(const char* name, uint64_t index, uint64_t value, const char* op) {
  json rule = Rule({name});
  rule["args"] = json::array({{{"index", index}, {"value", value}, {"op", op}}});
  return rule;
}

// arches(): keyed by containerd's GOARCH; "mips64n32", "mipsel64" and "mipsel64n32" are case
// labels upstream although no Go port has those names.
std::vector<std::string> Architectures(std::string_view arch) {
  if (arch == "amd64") return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  if (arch == "arm64") return {"SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"};
  if (arch == "mips64" || arch == "mips64n32") {
    return {"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32"};
  }
  if (arch == "mipsel64" || arch == "mipsel64n32") {
    return {"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32"};
  }
  if (arch == "s390x") return {"SCMP_ARCH_S390", "SCMP_ARCH_S390X"};
  if (arch == "riscv64") return {"SCMP_ARCH_RISCV64"};
  return {};
}

// The one rule per architecture (none for the others).
std::optional<std::vector<std::string>> ArchNames(std::string_view arch) {
  if (arch == "ppc64le") return std::vector<std::string>{"sync_file_range2", "swapcontext"};
  if (arch == "arm" || arch == "arm64") {
    return std::vector<std::string>{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                                    "breakpoint",       "cacheflush",          "set_tls"};
  }
  if (arch == "amd64") return std::vector<std::string>{"arch_prctl", "modify_ldt"};
  if (arch == "386") return std::vector<std::string>{"modify_ldt"};
  if (arch == "s390" || arch == "s390x") {
    return std::vector<std::string>{"s390_pci_mmio_read", "s390_pci_mmio_write",
                                    "s390_runtime_instr"};
  }
  if (arch == "riscv64") return std::vector<std::string>{"riscv_flush_icache"};
  return std::nullopt;
}

// The rule a capability of the bounding set adds (exact, upper-case names).
std::optional<std::vector<std::string>> CapabilityNames(std::string_view cap) {
  using V = std::vector<std::string>;
  if (cap == "CAP_DAC_READ_SEARCH") return V{"open_by_handle_at"};
  if (cap == "CAP_SYS_ADMIN") {
    return V{"bpf",
             "clone",
             "clone3",
             "fanotify_init",
             "fsconfig",
             "fsmount",
             "fsopen",
             "fspick",
             "lookup_dcookie",
             "mount",
             "mount_setattr",
             "move_mount",
             "name_to_handle_at",
             "open_tree",
             "perf_event_open",
             "quotactl",
             "quotactl_fd",
             "setdomainname",
             "sethostname",
             "setns",
             "syslog",
             "umount",
             "umount2",
             "unshare"};
  }
  if (cap == "CAP_SYS_BOOT") return V{"reboot"};
  if (cap == "CAP_SYS_CHROOT") return V{"chroot"};
  if (cap == "CAP_SYS_MODULE") return V{"delete_module", "init_module", "finit_module"};
  if (cap == "CAP_SYS_PACCT") return V{"acct"};
  if (cap == "CAP_SYS_PTRACE") {
    return V{"kcmp",  "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
             "ptrace"};
  }
  if (cap == "CAP_SYS_RAWIO") return V{"iopl", "ioperm"};
  if (cap == "CAP_SYS_TIME") return V{"settimeofday", "stime", "clock_settime", "clock_settime64"};
  if (cap == "CAP_SYS_TTY_CONFIG") return V{"vhangup"};
  if (cap == "CAP_SYS_NICE") return V{"get_mempolicy", "mbind", "set_mempolicy"};
  if (cap == "CAP_SYSLOG") return V{"syslog"};
  if (cap == "CAP_BPF") return V{"bpf"};
  if (cap == "CAP_PERFMON") return V{"perf_event_open"};
  return std::nullopt;
}

// kernelversion.GreaterEqualThan({4, 8}) on fmt.Sscanf(release, "%d.%d"): nullopt when the
// release does not parse (containerd then leaves the rule out).
std::optional<bool> KernelAtLeast48(std::string_view release) {
  auto number = [&](size_t& i) -> std::optional<uint64_t> {
    size_t start = i;
    uint64_t v = 0;
    while (i < release.size() && release[i] >= '0' && release[i] <= '9') {
      v = v * 10 + static_cast<uint64_t>(release[i] - '0');
      ++i;
    }
    if (i == start) return std::nullopt;
    return v;
  };
  size_t i = 0;
  auto major = number(i);
  if (!major || i >= release.size() || release[i] != '.') return std::nullopt;
  ++i;
  auto minor = number(i);
  if (!minor) return std::nullopt;
  return *major > 4 || (*major == 4 && *minor >= 8);
}

std::vector<std::string> Bounding(const Spec& s) {
  std::vector<std::string> out;
  if (!s.is_object() || !s.contains("process") || !s["process"].is_object()) return out;
  const json& p = s["process"];
  if (!p.contains("capabilities") || !p["capabilities"].is_object()) return out;
  const json& c = p["capabilities"];
  if (!c.contains("bounding") || !c["bounding"].is_array()) return out;
  for (const auto& v : c["bounding"]) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// ---- Decoding a profile as Go's encoding/json decodes specs.LinuxSeccomp ----

std::string_view JsonTypeName(const json& v) {
  if (v.is_string()) return "string";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "bool";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}

Error TypeError(const json& v, std::string_view field, std::string_view type) {
  return InvalidArgument(fmt::format("json: cannot unmarshal {} into Go struct field {} of type {}",
                                     JsonTypeName(v), field, type));
}

bool EqualFold(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
           };
           return lower(x) == lower(y);
         });
}

// The value of the field `key` of `obj`: the exact key, else a key equal under case folding (Go
// matches both). Null when absent.
const json* Field(const json& obj, std::string_view key) {
  if (auto it = obj.find(std::string(key)); it != obj.end()) return &*it;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (EqualFold(it.key(), key)) return &*it;
  }
  return nullptr;
}

// A string field: absent or null leaves the zero value.
Result<std::string> StringField(const json& obj, std::string_view key, std::string_view where,
                                std::string_view type) {
  const json* v = Field(obj, key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) return TypeError(*v, where, type);
  return v->get<std::string>();
}

// An unsigned integer field (Go uint/uint64): negative numbers and fractions do not fit.
Result<std::optional<uint64_t>> UintField(const json& obj, std::string_view key,
                                          std::string_view where, std::string_view type) {
  const json* v = Field(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<uint64_t>();
  if (!v->is_number_unsigned()) {
    if (v->is_number()) {
      return InvalidArgument(
          fmt::format("json: cannot unmarshal number {} into Go struct field {} of type {}",
                      v->dump(), where, type));
    }
    return TypeError(*v, where, type);
  }
  return std::optional<uint64_t>(v->get<uint64_t>());
}

Result<std::vector<std::string>> StringsField(const json& obj, std::string_view key,
                                              std::string_view where, std::string_view type) {
  std::vector<std::string> out;
  const json* v = Field(obj, key);
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_array()) return TypeError(*v, where, "[]" + std::string(type));
  for (const auto& e : *v) {
    if (!e.is_string()) return TypeError(e, where, type);
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<json> DecodeArg(const json& a) {
  if (!a.is_object()) return TypeError(a, "LinuxSyscall.args", "specs.LinuxSeccompArg");
  BERTH_ASSIGN_OR_RETURN(auto index, UintField(a, "index", "LinuxSeccompArg.index", "uint"));
  BERTH_ASSIGN_OR_RETURN(auto value, UintField(a, "value", "LinuxSeccompArg.value", "uint64"));
  BERTH_ASSIGN_OR_RETURN(auto value_two,
                         UintField(a, "valueTwo", "LinuxSeccompArg.valueTwo", "uint64"));
  BERTH_ASSIGN_OR_RETURN(auto op,
                         StringField(a, "op", "LinuxSeccompArg.op", "specs.LinuxSeccompOperator"));
  json out = {{"index", index.value_or(0)}, {"value", value.value_or(0)}};
  if (value_two.value_or(0) != 0) out["valueTwo"] = *value_two;
  out["op"] = op;
  return out;
}

Result<json> DecodeSyscall(const json& r) {
  if (!r.is_object()) return TypeError(r, "LinuxSeccomp.syscalls", "specs.LinuxSyscall");
  json out = json::object();
  const json* names = Field(r, "names");
  if (names == nullptr || names->is_null()) {
    out["names"] = nullptr;  // `names` has no omitempty: Go writes null
  } else {
    BERTH_ASSIGN_OR_RETURN(auto list, StringsField(r, "names", "LinuxSyscall.names", "string"));
    out["names"] = list;
  }
  BERTH_ASSIGN_OR_RETURN(
      auto action, StringField(r, "action", "LinuxSyscall.action", "specs.LinuxSeccompAction"));
  out["action"] = action;
  BERTH_ASSIGN_OR_RETURN(auto errno_ret, UintField(r, "errnoRet", "LinuxSyscall.errnoRet", "uint"));
  if (errno_ret) out["errnoRet"] = *errno_ret;  // a pointer: present even when 0
  const json* args = Field(r, "args");
  if (args != nullptr && !args->is_null()) {
    if (!args->is_array()) return TypeError(*args, "LinuxSyscall.args", "[]specs.LinuxSeccompArg");
    json list = json::array();
    for (const auto& a : *args) {
      BERTH_ASSIGN_OR_RETURN(json arg, DecodeArg(a));
      list.push_back(std::move(arg));
    }
    if (!list.empty()) out["args"] = std::move(list);
  }
  return out;
}

}  // namespace

SeccompHost CurrentSeccompHost() {
  SeccompHost host;
#if defined(__x86_64__)
  host.arch = "amd64";
#elif defined(__i386__)
  host.arch = "386";
#elif defined(__aarch64__)
  host.arch = "arm64";
#elif defined(__arm__)
  host.arch = "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  host.arch = "ppc64le";
#elif defined(__powerpc64__)
  host.arch = "ppc64";
#elif defined(__s390x__)
  host.arch = "s390x";
#elif defined(__s390__)
  host.arch = "s390";
#elif defined(__riscv) && __riscv_xlen == 64
  host.arch = "riscv64";
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  host.arch = "mips64le";
#elif defined(__mips64)
  host.arch = "mips64";
#elif defined(__mips__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  host.arch = "mipsle";
#elif defined(__mips__)
  host.arch = "mips";
#elif defined(__loongarch64)
  host.arch = "loong64";
#endif
  struct utsname uts {};
  if (::uname(&uts) == 0) host.kernel_release = uts.release;
  return host;
}

json DefaultSeccompProfile(const Spec& s, const SeccompHost& host) {
  json syscalls = json::array();
  syscalls.push_back(Rule(std::vector<std::string>(std::begin(kBaseNames), std::end(kBaseNames))));
  for (uint64_t persona : {0x0ULL, 0x0008ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    syscalls.push_back(ArgRule("personality", 0, persona, "SCMP_CMP_EQ"));
  }
  if (KernelAtLeast48(host.kernel_release).value_or(false)) syscalls.push_back(Rule({"ptrace"}));
  if (auto names = ArchNames(host.arch)) syscalls.push_back(Rule(std::move(*names)));
  bool admin = false;
  for (const auto& cap : Bounding(s)) {
    if (cap == "CAP_SYS_ADMIN") admin = true;
    if (auto names = CapabilityNames(cap)) syscalls.push_back(Rule(std::move(*names)));
  }
  if (!admin) {
    // clone's flags are its second argument on s390.
    uint64_t index = (host.arch == "s390" || host.arch == "s390x") ? 1 : 0;
    syscalls.push_back(ArgRule("clone", index, kCloneNamespaceMask, "SCMP_CMP_MASKED_EQ"));
    // ENOSYS rather than EPERM, so that glibc falls back to clone (moby/moby#42681).
    bool mips = host.arch.starts_with("mips");
    syscalls.push_back(
        json{{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", mips ? 89 : 38}});
  }
  json profile = {{"defaultAction", "SCMP_ACT_ERRNO"}};
  if (auto arches = Architectures(host.arch); !arches.empty()) profile["architectures"] = arches;
  profile["syscalls"] = std::move(syscalls);
  return profile;
}

json DefaultSeccompProfile(const Spec& s) { return DefaultSeccompProfile(s, CurrentSeccompHost()); }

void WithDefaultSeccomp(Spec& s) {
  json profile = DefaultSeccompProfile(s);
  if (!s.contains("linux") || !s["linux"].is_object()) s["linux"] = json::object();
  s["linux"]["seccomp"] = std::move(profile);
}

Result<json> DecodeSeccompProfile(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("invalid JSON");
  json out = {{"defaultAction", ""}};
  if (doc.is_null()) return out;
  if (!doc.is_object()) return TypeError(doc, "LinuxSeccomp", "specs.LinuxSeccomp");
  BERTH_ASSIGN_OR_RETURN(
      out["defaultAction"],
      StringField(doc, "defaultAction", "LinuxSeccomp.defaultAction", "specs.LinuxSeccompAction"));
  BERTH_ASSIGN_OR_RETURN(auto errno_ret,
                         UintField(doc, "defaultErrnoRet", "LinuxSeccomp.defaultErrnoRet", "uint"));
  if (errno_ret) out["defaultErrnoRet"] = *errno_ret;
  BERTH_ASSIGN_OR_RETURN(
      auto arches, StringsField(doc, "architectures", "LinuxSeccomp.architectures", "specs.Arch"));
  if (!arches.empty()) out["architectures"] = arches;
  BERTH_ASSIGN_OR_RETURN(
      auto flags, StringsField(doc, "flags", "LinuxSeccomp.flags", "specs.LinuxSeccompFlag"));
  if (!flags.empty()) out["flags"] = flags;
  BERTH_ASSIGN_OR_RETURN(auto listener_path,
                         StringField(doc, "listenerPath", "LinuxSeccomp.listenerPath", "string"));
  if (!listener_path.empty()) out["listenerPath"] = listener_path;
  BERTH_ASSIGN_OR_RETURN(
      auto listener_metadata,
      StringField(doc, "listenerMetadata", "LinuxSeccomp.listenerMetadata", "string"));
  if (!listener_metadata.empty()) out["listenerMetadata"] = listener_metadata;
  const json* syscalls = Field(doc, "syscalls");
  if (syscalls != nullptr && !syscalls->is_null()) {
    if (!syscalls->is_array()) {
      return TypeError(*syscalls, "LinuxSeccomp.syscalls", "[]specs.LinuxSyscall");
    }
    json list = json::array();
    for (const auto& r : *syscalls) {
      BERTH_ASSIGN_OR_RETURN(json rule, DecodeSyscall(r));
      list.push_back(std::move(rule));
    }
    if (!list.empty()) out["syscalls"] = std::move(list);
  }
  return out;
}

Status WithSeccompProfileFile(Spec& s, const std::string& path) {
  if (!s.contains("linux") || !s["linux"].is_object()) s["linux"] = json::object();
  s["linux"]["seccomp"] = json{{"defaultAction", ""}};  // Go sets an empty profile first
  auto text = fs::ReadFile(path);
  if (!text) {
    return Error(text.error().Code(),
                 fmt::format("cannot load seccomp profile {:?}: {}", path, text.error().What()));
  }
  auto profile = DecodeSeccompProfile(*text);
  if (!profile) {
    return InvalidArgument(
        fmt::format("decoding seccomp profile failed {:?}: {}", path, profile.error().What()));
  }
  s["linux"]["seccomp"] = std::move(*profile);
  return Ok();
}

void WithSeccompUnconfined(Spec& s) {
  if (!s.contains("linux") || !s["linux"].is_object()) s["linux"] = json::object();
  s["linux"].erase("seccomp");
}

bool SeccompSupported() {
  // A NULL filter program: EFAULT (or EACCES without no_new_privs/CAP_SYS_ADMIN) when the kernel
  // supports filters, EINVAL when it does not. Nothing is installed either way.
  int rc = ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, 0, 0, 0);
  return !(rc != 0 && errno == EINVAL);
}

}  // namespace berth::oci
