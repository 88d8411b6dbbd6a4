#pragma once
// berth's whole command tree: global flags and every command group (main.cc and the tests).
#include <CLI/CLI.hpp>

#include "cli/app.h"

namespace berth::cli {

// Builds the tree on `root` (its description, version flag, global flags and commands).
void BuildRoot(CLI::App& root, GlobalFlags& flags, App& app);

// `oci spec` (oci.cc).
void AddOciCommand(CLI::App& root, App& app);

}  // namespace berth::cli
