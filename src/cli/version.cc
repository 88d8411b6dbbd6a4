#include <cstdio>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/run.h"
#include "common/version.h"  // generated

namespace berth::cli {

void AddVersionCommand(CLI::App& root, App& app) {
  auto* cmd = root.add_subcommand("version", "print the client and server versions");
  SetAction(cmd, [&app]() -> Status {
    fmt::print("Client:\n  Version:  {}\n  Revision: {}\n\n", kVersion, kRevision);
    std::fflush(stdout);
    BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
    berth::Client client = LibClient(session);
    BERTH_ASSIGN_OR_RETURN(VersionInfo v, client.Version());
    fmt::print("Server:\n  Version:  {}\n  Revision: {}\n", v.version, v.revision);
    BERTH_ASSIGN_OR_RETURN(ServerInfo server, client.Server());
    fmt::print("  UUID: {}\n", server.uuid);
    if (v.version != kVersion) std::fprintf(stderr, "WARNING: version mismatch\n");
    if (v.revision != kRevision) std::fprintf(stderr, "WARNING: revision mismatch\n");
    return Ok();
  });
}

}  // namespace berth::cli
