// `berth run`: ctr's run — container from an image (or rootfs, or spec file), a task with this
// terminal's stdio, the exit status of the process as berth's own.
#include <random>

#include <fmt/format.h>

#include "cli/cio.h"
#include "cli/images_pull.h"
#include "cli/run.h"
#include "cli/suggest.h"
#include "common/log.h"

namespace berth::cli {
namespace {

struct RunFlags {
  ContainerFlags container;
  bool rm = false;
  bool null_io = false;
  std::string log_uri;
  bool detach = false;
  std::string fifo_dir;
  bool cni = false;
  bool pull = false;
  bool interactive = false;  // accepted: stdin is attached either way
  RegistryFlags registry;
};

// The image a run names, as stored: the name as given if the namespace has it, else its
// normalized form ("busybox" -> "docker.io/library/busybox:latest"); with --pull a missing image
// is pulled first.
Result<std::string> EnsureImage(App& app, const Session& session, const RunFlags& f,
                                const std::string& ref) {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> stored, StoredImageName(session, ref));
  if (stored) return *stored;
  auto normalized = NormalizeRef(ref);
  if (!f.pull) {
    return NotFound(fmt::format(
        "image {} not found in namespace {} (pull it with `berth images pull {}` or use `berth "
        "run --pull`)",
        ref, session.Namespace(), ref));
  }
  if (!normalized) return std::move(normalized).error();
  client::PullOptions options;
  BERTH_ASSIGN_OR_RETURN(options.registry, ResolverOptionsFrom(f.registry));
  options.snapshotter = f.container.snapshotter;
  if (!f.container.platform.empty()) {
    // The --platform of run selects what is pulled and unpacked too.
    BERTH_ASSIGN_OR_RETURN(auto p, images::ParsePlatformSpec(f.container.platform));
    options.platforms.push_back(p);
  }
  BERTH_ASSIGN_OR_RETURN(auto pulled, PullWithProgress(app, session, *normalized, options));
  return pulled.name;
}

// A container id for `berth run IMAGE` without one, as docker makes: 12 random hex digits.
std::string GeneratedId() {
  std::random_device rd;
  uint64_t bits = (static_cast<uint64_t>(rd()) << 32) | rd();
  return fmt::format("{:012x}", bits & 0xffffffffffffULL);
}

Result<int> RunAction(App& app, const RunFlags& f, std::vector<std::string> args) {
  const bool config = !f.container.config.empty();
  std::string id;
  bool generated = false;
  if (config) {
    id = args.empty() ? "" : args[0];
    if (args.size() > 1) {
      return Unknown("with spec config file, only container id should be provided");
    }
  } else {
    if (args.empty() || args[0].empty()) return Unknown("image ref must be provided");
    if (args.size() == 1) {
      // ctr requires the id; berth makes one when only the image is given (docker's way). An
      // id followed by a command keeps ctr's form: IMAGE ID [CMD...].
      args.push_back(GeneratedId());
      generated = true;
    }
    id = args[1];
  }
  if (id.empty()) return Unknown("container id must be provided");
  if (f.rm && f.detach) return Unknown("flags --detach and --rm cannot be specified together");
  if (f.cni) return NotImplemented("--cni: berth run has no CNI networking yet");

  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  std::vector<std::string> create_args = args;
  if (!config && !f.container.rootfs) {
    BERTH_ASSIGN_OR_RETURN(create_args[0], EnsureImage(app, session, f, args[0]));
  }
  BERTH_ASSIGN_OR_RETURN(auto container, NewContainer(session, f.container, create_args));
  // --rm: the container and its snapshot go whatever happens next (ctr's deferred Delete).
  struct Remove {
    const Session* session = nullptr;
    const containers_api::Container* c = nullptr;
    ~Remove() {
      if (c == nullptr) return;
      if (Status st = DeleteContainer(*session, *c, /*cleanup_snapshot=*/true); !st) {
        log::L().WithError(st.error()).Debug("remove container");
      }
    }
  } remove;
  if (f.rm) {
    // Set in place: assigning a braced Remove would run the temporary's destructor at once.
    remove.session = &session;
    remove.c = &container;
  }

  StartTaskOptions options;
  options.io = {.null_io = f.null_io, .log_uri = f.log_uri, .fifo_dir = f.fifo_dir};
  options.detach = f.detach;
  options.pid_file = f.container.pid_file;
  options.no_pivot = f.container.no_pivot;
  BERTH_ASSIGN_OR_RETURN(int code, StartTask(session, container, options));
  // A detached container's generated id is how the user finds it again (docker run -d prints
  // it too); in the foreground the output is the container's alone.
  if (generated && f.detach) fmt::print("{}\n", id);
  return code;
}

}  // namespace

void AddRunCommand(CLI::App& root, App& app) {
  auto* cmd = root.add_subcommand(
      "run", "run a container\n  berth run [flags] Image|RootFS [ID [COMMAND] [ARG...]]");
  auto f = std::make_shared<RunFlags>();
  cmd->add_flag("--rm", f->rm, "remove the container after running, cannot be used with --detach");
  cmd->add_flag("--null-io", f->null_io, "send all IO to /dev/null");
  cmd->add_option("--log-uri", f->log_uri, "log uri");
  cmd->add_flag("-d,--detach", f->detach,
                "detach from the task after it has started execution, cannot be used with --rm");
  cmd->add_option("--fifo-dir", f->fifo_dir, "directory used for storing IO FIFOs");
  cmd->add_flag("--cni", f->cni, "enable cni networking for the container");
  cmd->add_flag("--pull", f->pull,
                "pull the image first if the namespace lacks it (registry flags as images pull)");
  // The registry flags that do not clash with run's own (-u is the process user here).
  cmd->add_option("--hosts-dir", f->registry.hosts_dir,
                  "with --pull: custom hosts configuration directory");
  cmd->add_flag("--plain-http", f->registry.plain_http,
                "with --pull: allow connections using plain HTTP");
  cmd->add_flag("--skip-verify", f->registry.skip_verify,
                "with --pull: skip SSL certificate validation");
  AddContainerFlags(cmd, f->container);
  // Flags end at the image (ctr's SkipArgReorder): "sh -c 'exit 3'" stays the command.
  cmd->prefix_command();
  cmd->fallthrough(false);  // the image and command are ours, not the parent's
  cmd->add_flag("-i,--interactive", f->interactive,
                "keep stdin attached (it always is, as with ctr; for docker's -it)");
  SetCodeAction(cmd, [&app, f, cmd]() {
    RequireKnownFlags(cmd->remaining());
    return RunAction(app, *f, cmd->remaining());
  });
}

}  // namespace berth::cli
