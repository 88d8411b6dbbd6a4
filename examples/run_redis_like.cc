// The walk-through of the client library (containerd's "getting started" redis example): connect,
// pull an image with unpack, create a container with a snapshot and a spec from the image config,
// run its task with this process's stdio, wait for the exit status, clean up.
//
//   run_redis_like [-a SOCKET] [-n NAMESPACE] [--plain-http] [--import ARCHIVE] IMAGE ID [CMD...]
//
// With --import the image comes from an OCI/docker archive instead of a registry. The exit
// status of the container's process becomes this program's.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "berth/client.h"

namespace {

int Fail(const berth::Error& err) {
  std::fprintf(stderr, "run_redis_like: %s\n", err.ToString().c_str());
  return 1;
}

int Usage() {
  std::fprintf(stderr,
               "usage: run_redis_like [-a SOCKET] [-n NAMESPACE] [--plain-http] "
               "[--fifo-dir DIR] [--import ARCHIVE] IMAGE ID [CMD...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "/run/berth/berth.sock";
  std::string ns = "example";
  std::string archive;
  std::string fifo_dir;
  bool plain_http = false;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "-a" || a == "-n" || a == "--import" || a == "--fifo-dir") {
      const char* v = value();
      if (v == nullptr) return Usage();
      (a == "-a" ? address : a == "-n" ? ns : a == "--import" ? archive : fifo_dir) = v;
    } else if (a == "--plain-http") {
      plain_http = true;
    } else if (a == "-h" || a == "--help") {
      return Usage();
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() < 2) return Usage();
  const std::string ref = positional[0];
  const std::string id = positional[1];
  std::vector<std::string> args(positional.begin() + 2, positional.end());

  // 1. Connect; every call of this client runs in namespace `ns`.
  auto client = berth::Client::Connect(address, {.default_namespace = ns});
  if (!client) return Fail(client.error());

  // 2. Pull the image and unpack it into the default snapshotter.
  berth::Result<berth::Image> image = berth::NotFound("no image");
  if (archive.empty()) {
    image = client->Pull(ref, {.unpack = true, .registry = {.plain_http = plain_http}});
  } else {
    auto imported = client->Import(archive, {.unpack = true});
    if (!imported) return Fail(imported.error());
    image = client->GetImage(ref);
  }
  if (!image) return Fail(image.error());
  std::printf("image %s (%s)\n", image->Name().c_str(), image->Target().digest.c_str());

  // 3. A container: a writable snapshot of the image, a spec from the image config.
  std::vector<berth::SpecOpt> spec_opts = {berth::WithImageConfig(*image)};
  if (!args.empty()) spec_opts.push_back(berth::WithProcessArgs(args));
  auto container = client->NewContainer(id, berth::WithImage(*image),
                                        berth::WithNewSnapshot(id + "-snapshot", *image),
                                        berth::WithNewSpec(spec_opts));
  if (!container) return Fail(container.error());

  int code = 1;
  {
    // 4. A task (the container's process, not started yet) with this program's stdio.
    auto task = container->NewTask(berth::cio::Stdio({.fifo_dir = fifo_dir}));
    if (!task) {
      (void)container->Delete(berth::WithSnapshotCleanup);
      return Fail(task.error());
    }
    // 5. Wait before Start, so the exit cannot be missed; then start it.
    auto waiter = task->Wait();
    berth::Result<berth::ExitStatus> status = berth::Unknown("not started");
    if (waiter) {
      if (auto pid = task->Start(); pid) {
        std::printf("task %s started (pid %u)\n", id.c_str(), *pid);
        std::fflush(stdout);
        // 6. The exit status.
        status = waiter->Get();
      } else {
        status = pid.error();
      }
    } else {
      status = waiter.error();
    }
    if (status) {
      code = static_cast<int>(status->code);
      std::printf("task %s exited with status %d\n", id.c_str(), code);
    } else {
      std::fprintf(stderr, "run_redis_like: %s\n", status.error().ToString().c_str());
      (void)task->Kill(SIGKILL, true);
      if (waiter) (void)waiter->Get();
    }
    // 7. Delete the task (its IO drains first), then the container and its snapshot.
    if (auto deleted = task->Delete(); !deleted) return Fail(deleted.error());
  }
  if (auto st = container->Delete(berth::WithSnapshotCleanup); !st) return Fail(st.error());
  return code;
}
