// The spec options of the public library (berth::WithImageConfig, WithProcessArgs, ...) over the
// oci package.
#include <cstdlib>

#include <fmt/format.h>

#include "client/lib_internal.h"
#include "client/unpack.h"
#include "common/mount.h"
#include "oci/spec.h"

namespace berth {
namespace {

// Runs fn with the container's snapshot mounted read-only on a temporary directory (the root
// user lookups read), or with nullopt when the container has no snapshot yet.
Status WithRoot(const SpecContext& ctx, const std::function<Status(const oci::RootFs&)>& fn) {
  if (ctx.client == nullptr || ctx.container == nullptr || ctx.container->snapshot_key.empty() ||
      ctx.container->snapshotter.empty()) {
    return fn(std::nullopt);
  }
  client::SnapshotClient snapshots(ctx.client->State()->session, ctx.container->snapshotter);
  BERTH_ASSIGN_OR_RETURN(auto mounts, snapshots.Mounts(ctx.container->snapshot_key));
  const char* tmp = std::getenv("TMPDIR");
  std::string tmp_root = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  return mount::WithTempMount(mount::ReadonlyMounts(std::move(mounts)), tmp_root,
                              [&](const std::string& root) { return fn(root); });
}

oci::ImageConfig ToOci(const ImageConfig& c) {
  oci::ImageConfig out;
  out.env = c.env;
  out.entrypoint = c.entrypoint;
  out.cmd = c.cmd;
  out.working_dir = c.working_dir;
  out.user = c.user;
  out.stop_signal = c.stop_signal;
  out.labels = c.labels;
  return out;
}

SpecOpt ImageConfigOpt(const Image& image, std::optional<std::vector<std::string>> args) {
  return [image, args](const SpecContext& ctx, Spec& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(ImageConfig config, image.Config());
    oci::ImageConfig c = ToOci(config);
    // WithImageConfigArgs: the given args replace the image's cmd (entrypoint stays).
    if (args) c.cmd.clear();
    return WithRoot(ctx, [&](const oci::RootFs& root) {
      return oci::WithImageConfig(s, c, root, args.value_or(std::vector<std::string>{}));
    });
  };
}

}  // namespace

SpecOpt WithImageConfig(const Image& image) { return ImageConfigOpt(image, std::nullopt); }

SpecOpt WithImageConfigArgs(const Image& image, std::vector<std::string> args) {
  return ImageConfigOpt(image, std::move(args));
}

SpecOpt WithProcessArgs(std::vector<std::string> args) {
  return [args = std::move(args)](const SpecContext&, Spec& s) -> Status {
    oci::WithProcessArgs(s, args);
    return Ok();
  };
}

SpecOpt WithProcessCwd(std::string cwd) {
  return [cwd = std::move(cwd)](const SpecContext&, Spec& s) -> Status {
    oci::WithProcessCwd(s, cwd);
    return Ok();
  };
}

SpecOpt WithEnv(std::vector<std::string> env) {
  return [env = std::move(env)](const SpecContext&, Spec& s) -> Status {
    oci::WithEnv(s, env);
    return Ok();
  };
}

SpecOpt WithTTY() {
  return [](const SpecContext&, Spec& s) -> Status {
    oci::WithTty(s);
    return Ok();
  };
}

SpecOpt WithHostname(std::string hostname) {
  return [hostname = std::move(hostname)](const SpecContext&, Spec& s) -> Status {
    s["hostname"] = hostname;
    return Ok();
  };
}

SpecOpt WithUser(std::string user) {
  return [user = std::move(user)](const SpecContext& ctx, Spec& s) -> Status {
    return WithRoot(ctx, [&](const oci::RootFs& root) { return oci::WithUser(s, user, root); });
  };
}

SpecOpt WithHostNamespace(std::string type) {
  return [type = std::move(type)](const SpecContext&, Spec& s) -> Status {
    oci::WithHostNamespace(s, type);
    return Ok();
  };
}

SpecOpt WithMemoryLimit(uint64_t bytes) {
  return [bytes](const SpecContext&, Spec& s) -> Status {
    oci::WithMemoryLimit(s, bytes);
    return Ok();
  };
}

SpecOpt WithAnnotations(std::map<std::string, std::string> annotations) {
  return [annotations = std::move(annotations)](const SpecContext&, Spec& s) -> Status {
    oci::WithAnnotations(s, annotations);
    return Ok();
  };
}

SpecOpt WithRootFsReadonly() {
  return [](const SpecContext&, Spec& s) -> Status {
    oci::WithRootFsReadonly(s);
    return Ok();
  };
}

SpecOpt WithMounts(std::vector<MountSpec> mounts) {
  return [mounts = std::move(mounts)](const SpecContext&, Spec& s) -> Status {
    std::vector<oci::SpecMount> m;
    for (const auto& x : mounts) m.push_back({x.destination, x.type, x.source, x.options});
    oci::WithMounts(s, m);
    return Ok();
  };
}

}  // namespace berth
