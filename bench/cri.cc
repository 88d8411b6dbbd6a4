// bench_cri: a Kubernetes CRI (runtime.v1) client for bench/run.sh's cri_* scenarios. It drives
// berthd and containerd 1.6 alike, over one gRPC connection (as the kubelet does), and only
// measures: it never judges the numbers.
//
//   bench_cri --address SOCK ready --image IMG [--image IMG...] [--timeout-ms MS]
//     Polls Status until RuntimeReady and NetworkReady are true and ImageStatus until every IMG
//     is known to the CRI (containerd's CRI learns about images imported with ctr from events,
//     a moment later). Prints "ready_ms=..".
//
//   bench_cri --address SOCK pods --count N --image IMG --cgroup-parent CG --log-dir DIR
//             [--namespace NS] [--name PREFIX] [--concurrent] [--timeout-s S]
//     Starts N pods, each RunPodSandbox + CreateContainer + StartContainer of one container
//     (IMG, `sleep 100000`), one after another or, with --concurrent, all at once from N
//     threads released together. Pods get linux.cgroup_parent CG, their logs go under DIR and
//     their metadata namespace is NS (CNI_ARGS K8S_POD_NAMESPACE, so a runtime's CNI cache
//     entries can be found by it). One line per pod:
//       pod=I ok=1 sandbox=ID container=ID runp_ms=.. create_ms=.. start_ms=.. total_ms=.. at_s=..
//       pod=I ok=0 step=runp|create|start sandbox=ID error="..."
//     then "count=N ok=K failed=F wall_ms=..". Every time is steady_clock around the RPC(s);
//     at_s is the pod's start on that clock (CLOCK_MONOTONIC, seconds), to line the calls up
//     with other traces (perf record -k CLOCK_MONOTONIC, the daemons' logs).
//
//   bench_cri --address SOCK rmpods [--parallel P] [--timeout-s S]
//     StopPodSandbox + RemovePodSandbox of every pod sandbox the runtime lists (their
//     containers go with them), P at a time. Prints "removed=N failed=F" (and the first error).
//
// Exit status: 0 when everything succeeded, 1 when an RPC failed or the timeout passed, 2 on
// bad usage.

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <cri/api/api.grpc.pb.h>
#include <grpcpp/grpcpp.h>

namespace {

namespace rt = ::runtime::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string address;
  std::string command;
  std::vector<std::string> images;
  long count = 1;
  std::string cgroup_parent;
  std::string log_dir;
  std::string pod_namespace = "berth-bench";
  std::string name = "bench";
  bool concurrent = false;
  long timeout_s = 300;
  long timeout_ms = 60000;
  long parallel = 4;
};

[[noreturn]] void Usage(const std::string& msg) {
  std::fprintf(stderr,
               "bench_cri: %s\n"
               "usage: bench_cri --address SOCK ready --image IMG [--image IMG...] "
               "[--timeout-ms MS]\n"
               "       bench_cri --address SOCK pods --count N --image IMG --cgroup-parent CG "
               "--log-dir DIR [--namespace NS] [--name PREFIX] [--concurrent] [--timeout-s S]\n"
               "       bench_cri --address SOCK rmpods [--parallel P] [--timeout-s S]\n",
               msg.c_str());
  std::exit(2);
}

long ParseLong(const std::string& flag, const char* value) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v <= 0) {
    Usage("bad value for " + flag + ": " + value);
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage("missing value for " + a);
      return argv[++i];
    };
    if (a == "--address" || a == "-a") {
      o.address = value();
    } else if (a == "--image") {
      o.images.emplace_back(value());
    } else if (a == "--count") {
      o.count = ParseLong(a, value());
    } else if (a == "--cgroup-parent") {
      o.cgroup_parent = value();
    } else if (a == "--log-dir") {
      o.log_dir = value();
    } else if (a == "--namespace") {
      o.pod_namespace = value();
    } else if (a == "--name") {
      o.name = value();
    } else if (a == "--concurrent") {
      o.concurrent = true;
    } else if (a == "--timeout-s") {
      o.timeout_s = ParseLong(a, value());
    } else if (a == "--timeout-ms") {
      o.timeout_ms = ParseLong(a, value());
    } else if (a == "--parallel") {
      o.parallel = ParseLong(a, value());
    } else if (a == "--help" || a == "-h") {
      Usage("help");
    } else if (!a.starts_with("-") && o.command.empty()) {
      o.command = a;
    } else {
      Usage("unknown argument " + a);
    }
  }
  if (o.address.empty()) Usage("--address is required");
  if (o.address.starts_with("unix://")) o.address.erase(0, std::strlen("unix://"));
  if (o.command == "ready" || o.command == "pods") {
    if (o.images.empty()) Usage(o.command + " needs --image");
  }
  if (o.command == "pods") {
    if (o.images.size() != 1) Usage("pods takes one --image");
    if (o.cgroup_parent.empty() || o.log_dir.empty()) {
      Usage("pods needs --cgroup-parent and --log-dir");
    }
  } else if (o.command != "ready" && o.command != "rmpods") {
    Usage(o.command.empty() ? "no command" : "unknown command " + o.command);
  }
  return o;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A message for the output line: one line, no double quotes.
std::string OneLine(const grpc::Status& st) {
  std::string s = std::to_string(static_cast<int>(st.error_code())) + ": " + st.error_message();
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '"', '\'');
  return s;
}

class Client {
 public:
  Client(const std::string& path, long timeout_s) : timeout_s_(timeout_s) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    args.SetMaxReceiveMessageSize(16 << 20);
    channel_ =
        grpc::CreateCustomChannel("unix://" + path, grpc::InsecureChannelCredentials(), args);
    runtime_ = rt::RuntimeService::NewStub(channel_);
    images_ = rt::ImageService::NewStub(channel_);
  }

  // A context with the per-RPC deadline; unique_ptr as grpc::ClientContext cannot be moved.
  [[nodiscard]] std::unique_ptr<grpc::ClientContext> Ctx() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s_));
    return ctx;
  }

  rt::RuntimeService::Stub& Runtime() { return *runtime_; }
  rt::ImageService::Stub& Images() { return *images_; }

 private:
  long timeout_s_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rt::RuntimeService::Stub> runtime_;
  std::unique_ptr<rt::ImageService::Stub> images_;
};

int Ready(const Options& o, Client& c) {
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::milliseconds(o.timeout_ms);
  std::string why = "no answer yet";
  while (Clock::now() < deadline) {
    bool ok = true;
    rt::StatusRequest sreq;
    rt::StatusResponse sresp;
    auto ctx = c.Ctx();
    grpc::Status st = c.Runtime().Status(ctx.get(), sreq, &sresp);
    if (!st.ok()) {
      ok = false;
      why = "Status: " + OneLine(st);
    } else {
      for (const auto& cond : sresp.status().conditions()) {
        if (!cond.status()) {
          ok = false;
          why = "Status: " + cond.type() + " false: " + cond.reason() + " " + cond.message();
        }
      }
    }
    for (const std::string& image : o.images) {
      if (!ok) break;
      rt::ImageStatusRequest ireq;
      ireq.mutable_image()->set_image(image);
      rt::ImageStatusResponse iresp;
      auto ictx = c.Ctx();
      st = c.Images().ImageStatus(ictx.get(), ireq, &iresp);
      if (!st.ok() || !iresp.has_image()) {
        ok = false;
        why = "ImageStatus " + image + ": " + (st.ok() ? std::string("not found") : OneLine(st));
      }
    }
    if (ok) {
      std::printf("ready_ms=%.1f\n", MsSince(t0));
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(stderr, "bench_cri: not ready after %ld ms: %s\n", o.timeout_ms, why.c_str());
  return 1;
}

struct PodResult {
  bool ok = false;
  std::string step;
  std::string error;
  std::string sandbox;
  std::string container;
  double runp_ms = 0;
  double create_ms = 0;
  double start_ms = 0;
  double total_ms = 0;
  double at_s = 0;  // CLOCK_MONOTONIC at the start (perf record -k CLOCK_MONOTONIC aligns)
};

rt::PodSandboxConfig SandboxConfig(const Options& o, long i) {
  rt::PodSandboxConfig cfg;
  const std::string name = o.name + "-" + std::to_string(i);
  cfg.mutable_metadata()->set_name(name);
  cfg.mutable_metadata()->set_uid(o.name + "-uid-" + std::to_string(i));
  cfg.mutable_metadata()->set_namespace_(o.pod_namespace);
  cfg.mutable_metadata()->set_attempt(0);
  cfg.set_hostname(name);
  cfg.set_log_directory(o.log_dir + "/" + name);
  (*cfg.mutable_labels())["berth-bench"] = o.name;
  auto* lx = cfg.mutable_linux();
  lx->set_cgroup_parent(o.cgroup_parent);
  // As the kubelet's default: network and IPC shared in the pod, a PID namespace per container.
  auto* ns = lx->mutable_security_context()->mutable_namespace_options();
  ns->set_network(rt::POD);
  ns->set_pid(rt::CONTAINER);
  ns->set_ipc(rt::POD);
  return cfg;
}

PodResult StartPod(const Options& o, Client& c, long i) {
  PodResult r;
  const rt::PodSandboxConfig sandbox = SandboxConfig(o, i);
  // The kubelet creates the pod's log directory; so does this client.
  ::mkdir(sandbox.log_directory().c_str(), 0755);
  const auto t0 = Clock::now();
  r.at_s = std::chrono::duration<double>(t0.time_since_epoch()).count();

  rt::RunPodSandboxRequest rreq;
  *rreq.mutable_config() = sandbox;
  rt::RunPodSandboxResponse rresp;
  auto ctx = c.Ctx();
  grpc::Status st = c.Runtime().RunPodSandbox(ctx.get(), rreq, &rresp);
  r.runp_ms = MsSince(t0);
  if (!st.ok()) {
    r.step = "runp";
    r.error = OneLine(st);
    return r;
  }
  r.sandbox = rresp.pod_sandbox_id();

  const auto t1 = Clock::now();
  rt::CreateContainerRequest creq;
  creq.set_pod_sandbox_id(r.sandbox);
  *creq.mutable_sandbox_config() = sandbox;
  rt::ContainerConfig* cc = creq.mutable_config();
  cc->mutable_metadata()->set_name("main");
  cc->mutable_image()->set_image(o.images.front());
  cc->add_command("sleep");
  cc->add_args("100000");
  cc->set_log_path("main/0.log");
  (*cc->mutable_labels())["berth-bench"] = o.name;
  ::mkdir((sandbox.log_directory() + "/main").c_str(), 0755);
  rt::CreateContainerResponse cresp;
  ctx = c.Ctx();
  st = c.Runtime().CreateContainer(ctx.get(), creq, &cresp);
  r.create_ms = MsSince(t1);
  if (!st.ok()) {
    r.step = "create";
    r.error = OneLine(st);
    return r;
  }
  r.container = cresp.container_id();

  const auto t2 = Clock::now();
  rt::StartContainerRequest sreq;
  sreq.set_container_id(r.container);
  rt::StartContainerResponse sresp;
  ctx = c.Ctx();
  st = c.Runtime().StartContainer(ctx.get(), sreq, &sresp);
  r.start_ms = MsSince(t2);
  r.total_ms = MsSince(t0);
  if (!st.ok()) {
    r.step = "start";
    r.error = OneLine(st);
    return r;
  }
  r.ok = true;
  return r;
}

void PrintPod(long i, const PodResult& r) {
  if (r.ok) {
    std::printf(
        "pod=%ld ok=1 sandbox=%s container=%s runp_ms=%.2f create_ms=%.2f start_ms=%.2f "
        "total_ms=%.2f at_s=%.6f\n",
        i, r.sandbox.c_str(), r.container.c_str(), r.runp_ms, r.create_ms, r.start_ms, r.total_ms,
        r.at_s);
  } else {
    std::printf("pod=%ld ok=0 step=%s sandbox=%s error=\"%s\"\n", i, r.step.c_str(),
                r.sandbox.empty() ? "-" : r.sandbox.c_str(), r.error.c_str());
  }
  std::fflush(stdout);
}

int Pods(const Options& o, Client& c) {
  ::mkdir(o.log_dir.c_str(), 0755);
  std::vector<PodResult> results(static_cast<size_t>(o.count));
  const auto t0 = Clock::now();
  if (o.concurrent) {
    // Every thread is created and connected first, then all are released at once.
    std::latch go(o.count + 1);
    std::vector<std::jthread> threads;
    threads.reserve(results.size());
    for (long i = 0; i < o.count; ++i) {
      threads.emplace_back([&o, &c, &go, &results, i] {
        go.arrive_and_wait();
        results[static_cast<size_t>(i)] = StartPod(o, c, i + 1);
      });
    }
    const auto released = Clock::now();
    go.arrive_and_wait();
    threads.clear();  // joins
    const double wall = MsSince(released);
    long ok = 0;
    for (long i = 0; i < o.count; ++i) {
      PrintPod(i + 1, results[static_cast<size_t>(i)]);
      ok += results[static_cast<size_t>(i)].ok ? 1 : 0;
    }
    std::printf("count=%ld ok=%ld failed=%ld wall_ms=%.1f\n", o.count, ok, o.count - ok, wall);
    return ok == o.count ? 0 : 1;
  }
  long ok = 0;
  for (long i = 0; i < o.count; ++i) {
    results[static_cast<size_t>(i)] = StartPod(o, c, i + 1);
    PrintPod(i + 1, results[static_cast<size_t>(i)]);
    if (!results[static_cast<size_t>(i)].ok) break;  // a broken runtime: stop here
    ++ok;
  }
  std::printf("count=%ld ok=%ld failed=%ld wall_ms=%.1f\n", o.count, ok, o.count - ok, MsSince(t0));
  return ok == o.count ? 0 : 1;
}

int RmPods(const Options& o, Client& c) {
  rt::ListPodSandboxRequest lreq;
  rt::ListPodSandboxResponse lresp;
  auto ctx = c.Ctx();
  grpc::Status st = c.Runtime().ListPodSandbox(ctx.get(), lreq, &lresp);
  if (!st.ok()) {
    std::printf("removed=0 failed=0 error=\"ListPodSandbox: %s\"\n", OneLine(st).c_str());
    return 1;
  }
  std::vector<std::string> ids;
  for (const auto& p : lresp.items()) ids.push_back(p.id());
  std::atomic<size_t> next{0};
  std::atomic<long> removed{0};
  std::mutex mu;
  std::string first_error;
  auto worker = [&] {
    for (size_t k = next++; k < ids.size(); k = next++) {
      rt::StopPodSandboxRequest sreq;
      sreq.set_pod_sandbox_id(ids[k]);
      rt::StopPodSandboxResponse sresp;
      auto sctx = c.Ctx();
      grpc::Status s = c.Runtime().StopPodSandbox(sctx.get(), sreq, &sresp);
      std::string step = "StopPodSandbox";
      if (s.ok()) {
        rt::RemovePodSandboxRequest rreq;
        rreq.set_pod_sandbox_id(ids[k]);
        rt::RemovePodSandboxResponse rresp;
        auto rctx = c.Ctx();
        s = c.Runtime().RemovePodSandbox(rctx.get(), rreq, &rresp);
        step = "RemovePodSandbox";
      }
      if (s.ok()) {
        ++removed;
      } else {
        const std::lock_guard lock(mu);
        if (first_error.empty()) first_error = step + " " + ids[k] + ": " + OneLine(s);
      }
    }
  };
  {
    std::vector<std::jthread> threads;
    const long n = std::min<long>(o.parallel, static_cast<long>(ids.size()));
    threads.reserve(static_cast<size_t>(n));
    for (long i = 0; i < n; ++i) threads.emplace_back(worker);
  }
  const long failed = static_cast<long>(ids.size()) - removed.load();
  std::printf("removed=%ld failed=%ld", removed.load(), failed);
  if (!first_error.empty()) std::printf(" error=\"%s\"", first_error.c_str());
  std::printf("\n");
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  Client c(o.address, o.timeout_s);
  if (o.command == "ready") return Ready(o, c);
  if (o.command == "pods") return Pods(o, c);
  return RmPods(o, c);
}
