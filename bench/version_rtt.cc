// bench_version_rtt: latency of containerd's Version RPC over a unix socket.
//
// Two modes, both talking to any daemon that serves containerd's gRPC API:
//
//   bench_version_rtt --address SOCK --count N [--warmup W]
//     Connects once, makes W untimed Version calls, then times N sequential
//     calls and prints one line:
//       count=N p50_us=.. p90_us=.. p99_us=.. min_us=.. max_us=.. mean_us=..
//
//   bench_version_rtt --address SOCK --wait-ready TIMEOUT_MS [--pid-file FILE]
//     Start-to-ready helper. Prints "polling" as soon as it is loaded and
//     initialised (so a caller can start the daemon only then, and the tool's
//     own start-up is not counted), then polls until a Version call succeeds:
//     first until the socket accepts a connection, then with a fresh channel
//     per attempt so gRPC's reconnect backoff never delays us. On success it
//     prints
//       ready_epoch=SECONDS.MICROS
//     (CLOCK_REALTIME, comparable with bash's $EPOCHREALTIME). If FILE appears
//     and holds a PID, polling stops early when that process has exited.
//
// Exit status: 0 on success, 1 if an RPC failed or the timeout passed, 2 on
// bad usage. This is a measuring tool: it never judges the numbers.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <google/protobuf/empty.pb.h>
#include <grpcpp/grpcpp.h>

namespace {

using Clock = std::chrono::steady_clock;
using VersionStub = containerd::services::version::v1::Version::Stub;

struct Options {
  std::string address;
  long count = 1000;
  long warmup = 100;
  long wait_ready_ms = -1;  // < 0: RTT mode
  std::string pid_file;
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "bench_version_rtt: %s\n"
               "usage: bench_version_rtt --address SOCK [--count N] [--warmup W]\n"
               "       bench_version_rtt --address SOCK --wait-ready TIMEOUT_MS "
               "[--pid-file FILE]\n",
               msg);
  std::exit(2);
}

long ParseLong(const char* flag, const char* value) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < 0) {
    Usage((std::string("bad value for ") + flag + ": " + value).c_str());
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage((std::string("missing value for ") + argv[i]).c_str());
      return argv[++i];
    };
    if (a == "--address" || a == "-a") {
      o.address = value();
    } else if (a == "--count") {
      o.count = ParseLong("--count", value());
    } else if (a == "--warmup") {
      o.warmup = ParseLong("--warmup", value());
    } else if (a == "--wait-ready") {
      o.wait_ready_ms = ParseLong("--wait-ready", value());
    } else if (a == "--pid-file") {
      o.pid_file = value();
    } else if (a == "--help" || a == "-h") {
      Usage("help");
    } else {
      Usage((std::string("unknown argument ") + argv[i]).c_str());
    }
  }
  if (o.address.empty()) Usage("--address is required");
  if (o.wait_ready_ms < 0 && o.count == 0) Usage("--count must be > 0");
  // Accept both "/run/x.sock" and "unix:///run/x.sock", like ctr.
  if (o.address.starts_with("unix://")) o.address.erase(0, std::strlen("unix://"));
  return o;
}

std::shared_ptr<grpc::Channel> Dial(const std::string& path) {
  grpc::ChannelArguments args;
  // A private subchannel pool: no reconnect-backoff state shared with earlier
  // channels to the same address (matters when polling a starting daemon).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1);
  return grpc::CreateCustomChannel("unix://" + path, grpc::InsecureChannelCredentials(), args);
}

grpc::Status CallVersion(VersionStub& stub, std::chrono::milliseconds timeout, bool wait_ready) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(wait_ready);
  google::protobuf::Empty req;
  containerd::services::version::v1::VersionResponse resp;
  return stub.Version(&ctx, req, &resp);
}

// True once something listens on the unix socket at `path`.
bool SocketAccepts(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) return false;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(fd);
  return ok;
}

double EpochNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The PID in `pid_file`, or 0 while the file is missing or incomplete.
pid_t ReadPid(const std::string& pid_file) {
  std::FILE* f = std::fopen(pid_file.c_str(), "re");
  if (f == nullptr) return 0;
  long pid = 0;
  char nl = 0;
  bool ok = std::fscanf(f, "%ld%c", &pid, &nl) == 2 && nl == '\n';
  std::fclose(f);
  return ok ? static_cast<pid_t>(pid) : 0;
}

// True if `pid` is gone or a zombie (its parent has not reaped it yet).
bool Exited(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return true;
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  // "pid (comm) S ...": the state follows the last ')'.
  const char* rp = std::strrchr(buf, ')');
  if (n == 0 || rp == nullptr || rp[1] == '\0') return true;
  return rp[2] == 'Z' || rp[2] == 'X';
}

int WaitReady(const Options& o) {
  // Initialise gRPC before announcing, so that cost is not counted either.
  { auto warm = Dial(o.address); }
  std::printf("polling\n");
  std::fflush(stdout);
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.wait_ready_ms);
  std::string last_error = "socket never accepted a connection";
  pid_t pid = 0;
  while (Clock::now() < deadline) {
    if (!o.pid_file.empty()) {
      if (pid == 0) pid = ReadPid(o.pid_file);
      if (pid > 0 && Exited(pid)) {
        std::fprintf(stderr, "bench_version_rtt: process %d exited before %s was ready\n",
                     static_cast<int>(pid), o.address.c_str());
        return 1;
      }
    }
    if (!SocketAccepts(o.address)) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    auto channel = Dial(o.address);
    VersionStub stub(channel);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    grpc::Status st = CallVersion(stub, std::min(left, std::chrono::milliseconds(2000)), true);
    if (st.ok()) {
      std::printf("ready_epoch=%.6f\n", EpochNow());
      return 0;
    }
    last_error = "Version: " + st.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::fprintf(stderr, "bench_version_rtt: %s not ready after %ld ms: %s\n", o.address.c_str(),
               o.wait_ready_ms, last_error.c_str());
  return 1;
}

// Nearest-rank percentile of sorted samples.
double Percentile(const std::vector<double>& sorted, double p) {
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

int MeasureRtt(const Options& o) {
  auto channel = Dial(o.address);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "bench_version_rtt: cannot connect to %s\n", o.address.c_str());
    return 1;
  }
  VersionStub stub(channel);
  constexpr std::chrono::milliseconds kTimeout(10000);
  for (long i = 0; i < o.warmup; ++i) {
    if (grpc::Status st = CallVersion(stub, kTimeout, false); !st.ok()) {
      std::fprintf(stderr, "bench_version_rtt: warm-up Version: %s\n", st.error_message().c_str());
      return 1;
    }
  }
  std::vector<double> us;
  us.reserve(static_cast<size_t>(o.count));
  for (long i = 0; i < o.count; ++i) {
    auto t0 = Clock::now();
    grpc::Status st = CallVersion(stub, kTimeout, false);
    auto t1 = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "bench_version_rtt: Version: %s\n", st.error_message().c_str());
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  double sum = 0;
  for (double v : us) sum += v;
  std::sort(us.begin(), us.end());
  std::printf(
      "count=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f min_us=%.1f max_us=%.1f mean_us=%.1f\n",
      us.size(), Percentile(us, 50), Percentile(us, 90), Percentile(us, 99), us.front(), us.back(),
      sum / static_cast<double>(us.size()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  return o.wait_ready_ms >= 0 ? WaitReady(o) : MeasureRtt(o);
}
