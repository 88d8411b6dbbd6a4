// berth: the CLI, with ctr's command tree and global flags.
#include <cstdio>
#include <cstdlib>
#include <string_view>

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
    // Usage errors print as every other error, "berth: <message>" with exit status 1.
    bool usage_error =
        e.get_exit_code() != 0 && dynamic_cast<const CLI::RuntimeError*>(&e) == nullptr;
    if (!usage_error) return root.exit(e);  // --help, --version, or an action's exit code
    // A mistyped command gets its nearest name instead of CLI11's generic complaint.
    std::string message = berth::cli::UnknownCommandMessage(root, argc, argv);
    if (message.empty() && dynamic_cast<const CLI::RequiredError*>(&e) != nullptr &&
        std::string_view(e.what()).find("subcommand") != std::string_view::npos) {
      // A command group named without its command (or a bare `berth`): its command list, as
      // ctr prints it.
      CLI::App* deepest = &root;
      for (auto subs = deepest->get_subcommands(); !subs.empty();
           subs = deepest->get_subcommands()) {
        deepest = subs.front();
      }
      std::fputs(deepest->help().c_str(), stdout);
      return 0;
    }
    if (message.empty()) message = e.what();
    // An unknown flag, worded as ctr's flag package words it.
    constexpr std::string_view kExtra = "The following argument was not expected: ";
    if (message.starts_with(kExtra) && message.size() > kExtra.size() + 1 &&
        message[kExtra.size()] == '-') {
      message = "flag provided but not defined: " + message.substr(kExtra.size());
    }
    std::fprintf(stderr, "berth: %s\n", message.c_str());
    return 1;
  }
  return 0;
}
