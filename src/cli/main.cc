// berth: the CLI, with ctr's command tree and global flags.
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "cli/run.h"
#include "common/version.h"  // generated

int main(int argc, char** argv) {
  berth::cli::GlobalFlags flags;
  if (const char* a = std::getenv("CONTAINERD_ADDRESS"); a != nullptr && *a != '\0') {
    flags.address = a;
  }
  if (const char* n = std::getenv("CONTAINERD_NAMESPACE"); n != nullptr && *n != '\0') {
    flags.ns = n;
  }
  CLI::App root{
      "berth: the command line client of berthd (ctr's commands and flags)\n"
      "  global flags may appear before or after the command"};
  root.set_version_flag("-v,--version", std::string("berth ") + berth::kVersion);
  root.require_subcommand(1);
  root.fallthrough();
  root.add_option("-a,--address", flags.address,
                  "address for berthd's GRPC server (env CONTAINERD_ADDRESS)")
      ->capture_default_str();
  root.add_option("-n,--namespace", flags.ns,
                  "namespace to use with commands (env CONTAINERD_NAMESPACE)")
      ->capture_default_str();
  root.add_option("--timeout", flags.timeout, "total timeout for commands (0 = none)")
      ->capture_default_str();
  root.add_option("--connect-timeout", flags.connect_timeout, "timeout for connecting to berthd")
      ->capture_default_str();
  root.add_flag("--debug", flags.debug, "enable debug output in logs");

  berth::cli::App app(flags);
  berth::cli::AddVersionCommand(root, app);
  berth::cli::AddNamespacesCommand(root, app);
  berth::cli::AddPluginsCommand(root, app);
  berth::cli::AddContentCommand(root, app);
  berth::cli::AddImagesCommand(root, app);
  berth::cli::AddLeasesCommand(root, app);
  berth::cli::AddEventsCommand(root, app);
  berth::cli::AddSnapshotsCommand(root, app);
  berth::cli::AddContainersCommand(root, app);
  berth::cli::AddTasksCommand(root, app);
  berth::cli::AddRunCommand(root, app);

  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  }
  return 0;
}
