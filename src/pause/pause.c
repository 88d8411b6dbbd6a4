/* berth-pause: the process of a pod sandbox when no sandbox image is configured
 * (sandbox_image = ""). It holds the pod's namespaces open, reaps the orphans it inherits as the
 * pod's init (pid 1 of a shared pid namespace), and exits 0 on SIGINT or SIGTERM, as the pause
 * image's binary does.
 *
 * Memory is the point: one runs per pod. On x86_64 and aarch64 it is built without a C library
 * (raw system calls, no signal handlers: the signals it acts on are blocked and taken with
 * rt_sigtimedwait, which also works for a namespace's pid 1, whose unhandled signals would
 * otherwise be dropped), so it is a few KiB and its resident set is a handful of pages. Other
 * architectures get the same logic over libc. */

#define BERTH_SIGINT 2
#define BERTH_SIGTERM 15
#define BERTH_SIGCHLD 17
#define BERTH_WNOHANG 1

#if defined(__x86_64__) || defined(__aarch64__)

#if defined(__x86_64__)
#define NR_WRITE 1
#define NR_RT_SIGPROCMASK 14
#define NR_RT_SIGTIMEDWAIT 128
#define NR_WAIT4 61
#define NR_EXIT_GROUP 231
#define NR_GETPID 39
static long Syscall4(long n, long a, long b, long c, long d) {
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
#define NR_WRITE 64
#define NR_RT_SIGPROCMASK 135
#define NR_RT_SIGTIMEDWAIT 137
#define NR_WAIT4 260
#define NR_EXIT_GROUP 94
#define NR_GETPID 172
static long Syscall4(long n, long a, long b, long c, long d) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#endif

__attribute__((noreturn)) static void Exit(int code) {
  for (;;) Syscall4(NR_EXIT_GROUP, code, 0, 0, 0);
}

__attribute__((noreturn)) static void Run(void) {
  if (Syscall4(NR_GETPID, 0, 0, 0, 0) != 1) {
    static const char kWarn[] = "berth-pause: not running as pid 1, orphans go elsewhere\n";
    Syscall4(NR_WRITE, 2, (long)kWarn, sizeof kWarn - 1, 0);
  }
  unsigned long set = (1UL << (BERTH_SIGINT - 1)) | (1UL << (BERTH_SIGTERM - 1)) |
                      (1UL << (BERTH_SIGCHLD - 1));
  Syscall4(NR_RT_SIGPROCMASK, 0 /* SIG_BLOCK */, (long)&set, 0, sizeof set);
  for (;;) {
    long sig = Syscall4(NR_RT_SIGTIMEDWAIT, (long)&set, 0, 0, sizeof set);
    if (sig == BERTH_SIGINT || sig == BERTH_SIGTERM) Exit(0);
    if (sig == BERTH_SIGCHLD) {
      while (Syscall4(NR_WAIT4, -1, 0, BERTH_WNOHANG, 0) > 0) {
      }
    }
  }
}

/* The process entry: no C runtime, so no argc/argv handling (berth-pause takes no arguments).
 * On x86_64 the stack is realigned for the C code it calls (the kernel enters with it aligned
 * for no return address). */
#if defined(__x86_64__)
#define BERTH_ENTRY __attribute__((noreturn, used, force_align_arg_pointer))
#else
#define BERTH_ENTRY __attribute__((noreturn, used))
#endif
BERTH_ENTRY void _start(void) { Run(); }

#else /* other architectures: the same over libc */

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  if (getpid() != 1) fputs("berth-pause: not running as pid 1, orphans go elsewhere\n", stderr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  for (;;) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig == SIGINT || sig == SIGTERM) return 0;
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    }
  }
}

#endif
