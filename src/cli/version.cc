#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>

#include <cstdio>

#include <fmt/format.h>

#include "cli/app.h"
#include "common/version.h"  // generated

namespace berth::cli {

void AddVersionCommand(CLI::App& root, App& app) {
  auto* cmd = root.add_subcommand("version", "print the client and server versions");
  SetAction(cmd, [&app]() -> Status {
    fmt::print("Client:\n  Version:  {}\n  Revision: {}\n\n", kVersion, kRevision);
    std::fflush(stdout);
    BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
    auto stub = containerd::services::version::v1::Version::NewStub(channel);
    containerd::services::version::v1::VersionResponse v;
    auto ctx = app.NewContext();
    if (auto st = stub->Version(ctx.get(), {}, &v); !st.ok()) return FromGrpc(st);
    fmt::print("Server:\n  Version:  {}\n  Revision: {}\n", v.version(), v.revision());
    auto istub = containerd::services::introspection::v1::Introspection::NewStub(channel);
    containerd::services::introspection::v1::ServerResponse s;
    auto ictx = app.NewContext();
    if (auto st = istub->Server(ictx.get(), {}, &s); !st.ok()) return FromGrpc(st);
    fmt::print("  UUID: {}\n", s.uuid());
    if (v.version() != kVersion) std::fprintf(stderr, "WARNING: version mismatch\n");
    if (v.revision() != kRevision) std::fprintf(stderr, "WARNING: revision mismatch\n");
    return Ok();
  });
}

}  // namespace berth::cli
