#pragma once
// `berth completion bash|zsh`: shell completion scripts generated from the CLI11 command tree
// (subcommands, aliases, flags), so they follow the commands without being edited by hand.
#include <string>

#include <CLI/CLI.hpp>

namespace berth::cli {

// The scripts for `root`'s tree. Bash: defines _berth and runs `complete -F _berth <name>`.
// Zsh: a `#compdef` file for $fpath that also works when sourced (it then calls compdef).
std::string BashCompletion(CLI::App& root);
std::string ZshCompletion(CLI::App& root);

// Adds `completion` with `bash` and `zsh` to `root` (the scripts walk `root` when they run).
void AddCompletionCommand(CLI::App& root);

// If `argv` names an unknown subcommand where one is required, the message for it:
// `unknown command "imgs" for "berth images"; did you mean "images"?` ("" otherwise).
std::string UnknownCommandMessage(CLI::App& root, int argc, const char* const* argv);

}  // namespace berth::cli
