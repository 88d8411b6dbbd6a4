// `berth run`: ctr's run — container from an image (or rootfs, or spec file), a task with this
// terminal's stdio, the exit status of the process as berth's own.
#include <fmt/format.h>

#include "cli/cio.h"
#include "cli/run.h"
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
};

Result<int> RunAction(App& app, const RunFlags& f, const std::vector<std::string>& args) {
  const bool config = !f.container.config.empty();
  std::string id;
  if (config) {
    id = args.empty() ? "" : args[0];
    if (args.size() > 1) {
      return Unknown("with spec config file, only container id should be provided");
    }
  } else {
    id = args.size() > 1 ? args[1] : "";
    if (args.empty() || args[0].empty()) return Unknown("image ref must be provided");
  }
  if (id.empty()) return Unknown("container id must be provided");
  if (f.rm && f.detach) return Unknown("flags --detach and --rm cannot be specified together");
  if (f.cni) return NotImplemented("--cni: berth run has no CNI networking yet");

  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto container, NewContainer(session, f.container, args));
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
  return StartTask(session, container, options);
}

}  // namespace

void AddRunCommand(CLI::App& root, App& app) {
  auto* cmd = root.add_subcommand(
      "run", "run a container\n  berth run [flags] Image|RootFS ID [COMMAND] [ARG...]");
  auto f = std::make_shared<RunFlags>();
  cmd->add_flag("--rm", f->rm, "remove the container after running, cannot be used with --detach");
  cmd->add_flag("--null-io", f->null_io, "send all IO to /dev/null");
  cmd->add_option("--log-uri", f->log_uri, "log uri");
  cmd->add_flag("-d,--detach", f->detach,
                "detach from the task after it has started execution, cannot be used with --rm");
  cmd->add_option("--fifo-dir", f->fifo_dir, "directory used for storing IO FIFOs");
  cmd->add_flag("--cni", f->cni, "enable cni networking for the container");
  AddContainerFlags(cmd, f->container);
  // Flags end at the image (ctr's SkipArgReorder): "sh -c 'exit 3'" stays the command.
  cmd->prefix_command();
  cmd->fallthrough(false);  // the image and command are ours, not the parent's
  SetCodeAction(cmd, [&app, f, cmd]() { return RunAction(app, *f, cmd->remaining()); });
}

}  // namespace berth::cli
