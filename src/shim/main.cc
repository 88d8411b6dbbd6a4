// containerd-shim-berth-v2: the shim v2 binary (see manager.h for its command line).
#include <cstdio>
#include <string>
#include <vector>

#include "common/version.h"
#include "shim/manager.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = berth::shim::ParseFlags(args);
  if (!flags) {
    std::fprintf(stderr, "%s\n", flags.error().What().c_str());
    return 2;
  }
  if (flags->version) {
    std::printf("%s:\n  Version:  %s\n  Revision: %s\n\n", argv[0], berth::kVersion,
                berth::kRevision);
    return 0;
  }
  if (flags->ns.empty()) {
    std::fprintf(stderr, "containerd-shim-berth-v2: shim namespace cannot be empty\n");
    return 1;
  }
  if (flags->action == "start") {
    return berth::shim::StartShim(*flags);
  }
  if (flags->action == "delete") {
    return berth::shim::DeleteShim(*flags);
  }
  if (!flags->action.empty()) {
    std::fprintf(stderr, "containerd-shim-berth-v2: unknown action %s\n", flags->action.c_str());
    return 1;
  }
  return berth::shim::Serve(*flags);
}
