#pragma once
// Integration harness: a berthd on a fresh temporary root/state/socket, and helpers to run the
// real ctr and our berth against it. Everything is cleaned up by PID and path even when a test
// fails: the daemon is killed (SIGTERM, then SIGKILL) and the temp root removed.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"

namespace berth::testing {

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Runs argv[0] (PATH lookup) with optional stdin; kills it after `timeout`.
RunResult Exec(const std::vector<std::string>& argv, const std::string& input = "",
               std::chrono::seconds timeout = std::chrono::seconds(120));

// Path of one of our binaries (bin dir of the build, or $BERTH_BIN_DIR).
std::string BinPath(const std::string& name);

// Text of a file, or "" if it cannot be read.
std::string ReadText(const std::string& path);

// A child process running in the background with a stdin pipe; stdout and stderr go to files.
// Killed (SIGKILL) and reaped when destroyed.
class Background {
 public:
  static std::unique_ptr<Background> Start(const std::vector<std::string>& argv,
                                           const std::string& out_path);
  ~Background();
  // Writes all of `data` to its stdin (blocking).
  bool Write(std::string_view data);
  void CloseStdin();
  // Waits for exit; returns the status as Exec does, or -1 on timeout.
  int Wait(std::chrono::seconds timeout);
  void Kill();
  pid_t Pid() const { return pid_; }

 private:
  Background(pid_t pid, int stdin_fd) : pid_(pid), stdin_fd_(stdin_fd) {}
  pid_t pid_;
  int stdin_fd_;
};

// A long-running child (e.g. `ctr events`) whose stdout and stderr are collected in memory as they
// come, so a test can wait for a line. Killed by PID and reaped when destroyed; dies with the test
// process (parent-death signal). stdin is /dev/null.
class Watch {
 public:
  static std::unique_ptr<Watch> Start(const std::vector<std::string>& argv);
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Waits until stdout contains `text`; false if the output ended or `timeout` passed first.
  bool WaitFor(const std::string& text,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits for the exit (up to `timeout`): its status (128+N for signal N), or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Out();
  std::string Err();
  pid_t Pid() const { return pid_; }

 private:
  Watch(pid_t pid, int out_fd, int err_fd);
  void Read();

  pid_t pid_;
  int out_fd_;
  int err_fd_;
  std::optional<int> exit_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string out_;
  std::string err_;
  bool eof_ = false;
};

// Test images (tests/fixtures/build-images.sh), built once per build tree into
// <build>/fixtures with a 16 MiB `big`; returns the directory holding oci/ and busybox-oci.tar.
// Empty (and the test should fail) if the build fails.
std::string Fixtures();

// A docker-registry on 127.0.0.1 (random port) with every fixture image pushed as
// ADDR/test/<tag>:latest. Stopped by PID and its storage removed when destroyed.
class Registry {
 public:
  struct Options {
    std::string htpasswd;  // registry.sh start --htpasswd FILE (basic auth)
    std::string tls_cert;  // with tls_key: registry.sh start --tls CERT KEY (HTTPS)
    std::string tls_key;
    std::string creds;              // USER:PASS for pushing the fixtures (with htpasswd)
    std::vector<std::string> tags;  // fixture tags to push; empty: all
    // A network namespace (a path such as /run/netns/NAME) to run the registry in, so that a
    // daemon in that namespace reaches it on its 127.0.0.1; "" = the caller's namespace.
    std::string netns;
  };
  static std::unique_ptr<Registry> Start();
  static std::unique_ptr<Registry> Start(const Options& options);
  ~Registry();
  const std::string& Addr() const { return addr_; }  // "127.0.0.1:PORT"
  const std::string& Dir() const { return dir_.Path(); }
  std::string Ref(const std::string& tag) const { return addr_ + "/test/" + tag + ":latest"; }
  // Pushes every tag of another OCI layout as ADDR/test/<tag>:latest.
  bool Push(const std::string& layout);

 private:
  Registry(fs::TempDir dir, std::string addr, std::string netns)
      : dir_(std::move(dir)), addr_(std::move(addr)), netns_(std::move(netns)) {}
  fs::TempDir dir_;
  std::string addr_;
  std::string netns_;
};

// tests/fixtures/regproxy.py (python3) on 127.0.0.1, a random port, in front of the registry
// at `upstream` ("http://host:port"): bearer tokens at /token (--user/--password to demand
// basic credentials for them), and fault modes (--cut-after N, --corrupt, --redirect-blobs,
// --access-token; see the script). Killed by PID when destroyed.
class RegistryProxy {
 public:
  static std::unique_ptr<RegistryProxy> Start(const std::string& upstream,
                                              const std::vector<std::string>& args = {});
  const std::string& Addr() const { return addr_; }  // "127.0.0.1:PORT"

 private:
  RegistryProxy(std::unique_ptr<Watch> watch, std::string addr)
      : watch_(std::move(watch)), addr_(std::move(addr)) {}
  std::unique_ptr<Watch> watch_;
  std::string addr_;
};

class Daemon {
 public:
  struct Options {
    std::string extra_config;  // appended to the generated config.toml
    std::vector<std::string> extra_args;
    std::vector<std::string> env;  // "KEY=VALUE", added to berthd's environment
    // A network namespace (a path such as /run/netns/NAME) berthd runs in (as `nsenter --net`
    // would start it: only its network namespace differs), so CNI bridges and iptables rules
    // stay there; "" = the caller's namespace.
    std::string netns;
  };
  // A fresh temp dir holding root/, state/, config.toml and berthd.log; nothing started.
  static std::unique_ptr<Daemon> Create(Options options);
  static std::unique_ptr<Daemon> Create() { return Create(Options{}); }
  ~Daemon();

  // Starts berthd and waits until its socket answers a Version call. Returns false (with the
  // log in `Log()`) if it exits or does not answer within 30 s.
  bool Start();
  // SIGTERM and wait; returns the exit status (or -1 if it had to be SIGKILLed).
  int Stop();
  // SIGKILL and reap, leaving socket and lock behind as a crash would.
  void Kill9();
  bool Running() const { return pid_ > 0; }
  pid_t Pid() const { return pid_; }

  const std::string& Dir() const { return dir_.Path(); }
  std::string Root() const { return Dir() + "/root"; }
  std::string State() const { return Dir() + "/state"; }
  std::string Socket() const { return Dir() + "/state/berth.sock"; }
  std::string ConfigPath() const { return Dir() + "/config.toml"; }
  std::string Log() const { return ReadText(Dir() + "/berthd.log"); }

  // `ctr -a SOCK [-n NS] args...` and `berth -a SOCK [-n NS] args...`.
  RunResult Ctr(const std::vector<std::string>& args, const std::string& ns = "") const;
  RunResult Berth(const std::vector<std::string>& args, const std::string& ns = "") const;

 private:
  explicit Daemon(fs::TempDir dir, Options options)
      : dir_(std::move(dir)), options_(std::move(options)) {}
  bool WaitReady();

  fs::TempDir dir_;
  Options options_;
  pid_t pid_ = -1;
};

}  // namespace berth::testing
