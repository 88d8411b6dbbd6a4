// berth: the CLI, with ctr's command tree and global flags.
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "cli/completion.h"
#include "cli/root.h"

int main(int argc, char** argv) {
  berth::cli::GlobalFlags flags;
  if (const char* a = std::getenv("CONTAINERD_ADDRESS"); a != nullptr && *a != '\0') {
    flags.address = a;
  }
  if (const char* n = std::getenv("CONTAINERD_NAMESPACE"); n != nullptr && *n != '\0') {
    flags.ns = n;
  }
  CLI::App root;
  berth::cli::App app(flags);
  berth::cli::BuildRoot(root, flags, app);

  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command gets its nearest name instead of CLI11's generic complaint.
    bool usage_error =
        e.get_exit_code() != 0 && dynamic_cast<const CLI::RuntimeError*>(&e) == nullptr;
    if (usage_error) {
      std::string message = berth::cli::UnknownCommandMessage(root, argc, argv);
      if (!message.empty()) {
        std::fprintf(stderr, "berth: %s\n", message.c_str());
        return 1;
      }
    }
    return root.exit(e);
  }
  return 0;
}
