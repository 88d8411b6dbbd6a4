#include "cli/root.h"

#include <string>

#include "cli/completion.h"
#include "cli/run.h"
#include "common/version.h"  // generated

namespace berth::cli {

void BuildRoot(CLI::App& root, GlobalFlags& flags, App& app) {
  root.description(
      "berth: the command line client of berthd (ctr's commands and flags)\n"
      "  global flags may appear before or after the command");
  root.name("berth");
  root.set_version_flag("-v,--version", std::string("berth ") + kVersion);
  root.require_subcommand(1);
  root.fallthrough();
  root.add_option("-a,--address", flags.address,
                  "address for berthd's GRPC server (env CONTAINERD_ADDRESS)")
      ->capture_default_str();
  root.add_option("-n,--namespace", flags.ns,
                  "namespace to use with commands (env CONTAINERD_NAMESPACE)")
      ->capture_default_str();
  // Go durations with a unit, as ctr's flags: "10" alone is refused by name, never ignored.
  const CLI::Validator duration(
      [](std::string& v) -> std::string {
        auto d = ParseDuration(v);
        return d ? std::string() : d.error().What();
      },
      "DURATION");
  root.add_option("--timeout", flags.timeout, "total timeout for commands (0 = none)")
      ->capture_default_str()
      ->check(duration);
  root.add_option("--connect-timeout", flags.connect_timeout, "timeout for connecting to berthd")
      ->capture_default_str()
      ->check(duration);
  root.add_flag("--debug", flags.debug, "enable debug output in logs");

  AddVersionCommand(root, app);
  AddNamespacesCommand(root, app);
  AddPluginsCommand(root, app);
  AddContentCommand(root, app);
  AddImagesCommand(root, app);
  AddLeasesCommand(root, app);
  AddEventsCommand(root, app);
  AddSnapshotsCommand(root, app);
  AddContainersCommand(root, app);
  AddTasksCommand(root, app);
  AddRunCommand(root, app);
  AddOciCommand(root, app);
  AddCompletionCommand(root);
}

}  // namespace berth::cli
