// `berth images mount|unmount`: ctr's image mount commands. The image is unpacked (if needed)
// into the snapshotter, a view (or, with --rw, an active snapshot) keyed by the target path is
// created under a lease of the same name, and this process mounts it on the target.

#include <cstdio>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/run.h"
#include "cli/suggest.h"
#include "common/mount.h"

namespace berth::cli {
namespace {

constexpr const char* kDefaultSnapshotter = "overlayfs";

struct MountFlags {
  std::string snapshotter;
  std::string platform = FormatPlatform(DefaultPlatform());
  bool rw = false;
  bool rm = false;
  // Accepted for ctr compatibility (registry and label flags); unused.
  bool skip_verify = false;
  bool plain_http = false;
  bool http_dump = false;
  bool http_trace = false;
  std::string user;
  std::string refresh;
  std::string hosts_dir;
  std::string tlscacert;
  std::string tlscert;
  std::string tlskey;
  std::vector<std::string> labels;
};

void AddCompatFlags(CLI::App* cmd, MountFlags& f) {
  cmd->add_flag("-k,--skip-verify", f.skip_verify, "skip SSL certificate validation");
  cmd->add_flag("--plain-http", f.plain_http, "allow connections using plain HTTP");
  cmd->add_option("-u,--user", f.user, "user[:password] Registry user and password");
  cmd->add_option("--refresh", f.refresh, "refresh token for authorization server");
  cmd->add_option("--hosts-dir", f.hosts_dir, "Custom hosts configuration directory");
  cmd->add_option("--tlscacert", f.tlscacert, "path to TLS root CA");
  cmd->add_option("--tlscert", f.tlscert, "path to TLS client certificate");
  cmd->add_option("--tlskey", f.tlskey, "path to TLS client key");
  cmd->add_flag("--http-dump", f.http_dump,
                "dump all HTTP request/responses when interacting with container registry");
  cmd->add_flag("--http-trace", f.http_trace, "enable HTTP tracing for registry interactions");
  cmd->add_option("--snapshotter", f.snapshotter,
                  "snapshotter name. Empty value stands for the default value.")
      ->envname("CONTAINERD_SNAPSHOTTER");
  cmd->add_option("--label", f.labels, "labels to attach to the image")->allow_extra_args(false);
}

Status MountAction(App& app, const MountFlags& flags, const std::vector<std::string>& args) {
  std::string ref = args.empty() ? std::string() : args[0];
  std::string target = args.size() > 1 ? args[1] : "";
  if (ref.empty()) return Unknown("please provide an image reference to mount");
  if (target.empty()) return Unknown("please provide a target path to mount to");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());

  // ctr: the flag, else containerd.DefaultSnapshotter (no namespace default here).
  std::string snapshotter = flags.snapshotter.empty() ? kDefaultSnapshotter : flags.snapshotter;

  // A lease named after the target holds the unpacked chain and the mount's snapshot. If it
  // exists already (a second mount on the same target), ctr goes on without any lease.
  LeaseSpec spec;
  spec.id = target;
  spec.labels["containerd.io/gc.ref.snapshot." + snapshotter] = target;
  auto lease = CreateLease(session, spec);
  if (!lease && !lease.error().Is(Errc::kAlreadyExists)) return std::move(lease).error();
  Session leased = lease ? session.WithLease(*lease) : session;

  auto run = [&]() -> Status {
    auto platform = images::ParsePlatformSpec(flags.platform);
    if (!platform) {
      return std::move(platform).error().Wrap(
          fmt::format("unable to parse platform {}", flags.platform));
    }
    BERTH_ASSIGN_OR_RETURN(ref, ImageNameOrAsGiven(leased, ref));  // short names too
    auto image = LibClient(leased).GetImage(ref);
    if (!image) return ImageNotFound(leased, ref, std::move(image).error());
    OciDescriptor image_target;
    image_target.media_type = image->Target().media_type;
    image_target.digest = image->Target().digest;
    image_target.size = image->Target().size;

    UnpackOptions options;
    options.snapshotter = snapshotter;
    auto unpacked = UnpackImage(leased, image_target, PlatformMatcher::Only(*platform), options);
    if (!unpacked) return std::move(unpacked).error().Wrap("error unpacking image");
    const std::string& chain_id = unpacked->chain_id;
    fmt::print("{}\n", chain_id);
    std::fflush(stdout);

    SnapshotClient sn(leased, snapshotter);
    auto mounts = flags.rw ? sn.Prepare(target, chain_id) : sn.View(target, chain_id);
    if (!mounts && mounts.error().Is(Errc::kAlreadyExists)) mounts = sn.Mounts(target);
    if (!mounts) return std::move(mounts).error();

    if (auto s = mount::MountAll(*mounts, target); !s) {
      if (auto r = sn.Remove(target); !r && !r.error().Is(Errc::kNotFound)) {
        std::fprintf(stderr, "Error cleaning up snapshot after mount error: %s\n",
                     r.error().ToString().c_str());
      }
      return s;
    }
    fmt::print("{}\n", target);
    return Ok();
  };
  Status result = run();
  if (!result && lease) (void)DeleteLease(session, *lease);
  return result;
}

Status UnmountAction(App& app, const MountFlags& flags, const std::vector<std::string>& args) {
  std::string target = args.empty() ? std::string() : args[0];
  if (target.empty()) return Unknown("please provide a target path to unmount from");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_TRY(mount::UnmountAll(target));
  if (flags.rm) {
    BERTH_ASSIGN_OR_RETURN(std::string name, ResolveSnapshotterName(session, flags.snapshotter));
    if (auto s = DeleteLease(session, target); !s && !s.error().Is(Errc::kNotFound)) {
      return std::move(s).error().Wrap("error deleting lease");
    }
    SnapshotClient sn(session, name);
    if (auto s = sn.Remove(target); !s && !s.error().Is(Errc::kNotFound)) {
      return std::move(s).error().Wrap("error removing snapshot");
    }
  }
  fmt::print("{}\n", target);
  return Ok();
}

}  // namespace

void AddImagesMountCommands(CLI::App* images, App& app) {
  {
    auto* cmd = images->add_subcommand("mount", "mount an image to a target path");
    cmd->description(
        "Mount an image rootfs to a specified path.\n\nWhen you are done, use the unmount "
        "command.");
    auto flags = std::make_shared<MountFlags>();
    auto args = std::make_shared<std::vector<std::string>>();
    AddCompatFlags(cmd, *flags);
    cmd->add_flag("--rw", flags->rw, "Enable write support on the mount");
    cmd->add_option("--platform", flags->platform, "Mount the image for the specified platform")
        ->capture_default_str();
    cmd->add_option("args", *args, "<ref> <target>");
    SetAction(cmd, [&app, flags, args] { return MountAction(app, *flags, *args); });
  }
  {
    auto* cmd = images->add_subcommand("unmount", "unmount the image from the target");
    auto flags = std::make_shared<MountFlags>();
    auto args = std::make_shared<std::vector<std::string>>();
    AddCompatFlags(cmd, *flags);
    cmd->add_flag("--rm", flags->rm, "remove the snapshot after a successful unmount");
    cmd->add_option("args", *args, "<target>");
    SetAction(cmd, [&app, flags, args] { return UnmountAction(app, *flags, *args); });
  }
}

}  // namespace berth::cli
