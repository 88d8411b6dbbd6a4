// `berth images import|export`: ctr's archive commands (cmd/ctr/commands/images/import.go,
// export.go) over client::Import / client::Export.
#include <cstdio>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/client.h"
#include "client/transfer.h"

namespace berth::cli {
namespace {

struct ImportFlags {
  std::string base_name;
  bool digests = false;
  bool skip_digest_for_named = false;
  std::string index_name;
  bool all_platforms = false;
  std::string platform;
  bool no_unpack = false;
  bool compress_blobs = false;
  std::string snapshotter;
  std::vector<std::string> args;
};

Status ImportAction(App& app, const ImportFlags& f) {
  if (f.args.empty() || f.args[0].empty()) return Unknown("please provide an input file");
  if (f.skip_digest_for_named) {
    if (!f.digests) {
      return Unknown("--skip-digest-for-named must be specified with --digests option");
    }
    return NotImplemented("--skip-digest-for-named is not supported by berth yet");
  }
  if (f.compress_blobs) return NotImplemented("--compress-blobs is not supported by berth yet");
  client::ImportOptions options{.base_name = f.base_name,
                                .digests = f.digests,
                                .index_name = f.index_name,
                                .all_platforms = f.all_platforms,
                                .unpack = false,  // below, printing each as ctr does
                                .snapshotter = f.snapshotter};
  if (!f.platform.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto p, images::ParsePlatformSpec(f.platform));
    options.platforms.push_back(p);
  }
  BERTH_ASSIGN_OR_RETURN(auto session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto imported, client::Import(session, f.args[0], options));
  if (f.no_unpack) return Ok();
  BERTH_ASSIGN_OR_RETURN(std::string snapshotter, ResolveSnapshotterName(session, f.snapshotter));
  auto platform = images::PlatformMatcher::Only(
      options.platforms.empty() ? images::DefaultPlatform() : options.platforms.front());
  for (const auto& image : imported) {
    fmt::print("unpacking {} ({})...", image.name, image.target.digest);
    std::fflush(stdout);
    auto unpacked = UnpackImage(session, image.target, platform, {.snapshotter = snapshotter});
    if (!unpacked) {
      fmt::print("\n");
      return std::move(unpacked).error();
    }
    fmt::print("done\n");
  }
  return Ok();
}

struct ExportFlags {
  bool skip_manifest_json = false;
  bool skip_non_distributable = false;
  std::vector<std::string> platforms;
  bool all_platforms = false;
  std::vector<std::string> args;
};

Status ExportAction(App& app, const ExportFlags& f) {
  if (f.args.size() < 2 || f.args[0].empty()) {
    return Unknown("please provide both an output filename and an image reference to export");
  }
  client::ExportOptions options{.all_platforms = f.all_platforms,
                                .skip_manifest_json = f.skip_manifest_json,
                                .skip_non_distributable = f.skip_non_distributable};
  for (const auto& text : f.platforms) {
    auto p = images::ParsePlatformSpec(text);
    if (!p) return std::move(p).error().Wrap(fmt::format("invalid platform {:?}", text));
    options.platforms.push_back(*p);
  }
  BERTH_ASSIGN_OR_RETURN(auto session, app.Session());
  std::vector<std::string> names(f.args.begin() + 1, f.args.end());
  return client::Export(session, f.args[0], names, options);
}

}  // namespace

void AddImagesArchiveCommands(CLI::App* images, App& app) {
  {
    auto* cmd = images->add_subcommand("import", "import images");
    auto f = std::make_shared<ImportFlags>();
    cmd->add_option("--base-name", f->base_name,
                    "base image name for added images, when provided only images with this name "
                    "prefix are imported");
    cmd->add_flag("--digests", f->digests, "whether to create digest images (default: false)");
    cmd->add_flag("--skip-digest-for-named", f->skip_digest_for_named,
                  "skip applying --digests option to images named in the importing tar");
    cmd->add_option("--index-name", f->index_name,
                    "image name to keep index as, by default index is discarded");
    cmd->add_flag("--all-platforms", f->all_platforms,
                  "imports content for all platforms, false by default");
    cmd->add_option("--platform", f->platform, "imports content for specific platform");
    cmd->add_flag("--no-unpack", f->no_unpack, "skip unpacking the images, false by default");
    cmd->add_flag("--compress-blobs", f->compress_blobs,
                  "compress uncompressed blobs when creating manifest (Docker format only)");
    cmd->add_option("--snapshotter", f->snapshotter,
                    "snapshotter name. Empty value stands for the default value.")
        ->envname("CONTAINERD_SNAPSHOTTER");
    cmd->add_option("in", f->args, "<in>");
    SetAction(cmd, [&app, f]() -> Status { return ImportAction(app, *f); });
  }
  {
    auto* cmd = images->add_subcommand("export", "export images");
    auto f = std::make_shared<ExportFlags>();
    cmd->add_flag("--skip-manifest-json", f->skip_manifest_json,
                  "do not add Docker compatible manifest.json to archive");
    cmd->add_flag("--skip-non-distributable", f->skip_non_distributable,
                  "do not add non-distributable blobs such as Windows layers to archive");
    cmd->add_option("--platform", f->platforms, "Pull content from a specific platform")
        ->allow_extra_args(false);
    cmd->add_flag("--all-platforms", f->all_platforms, "exports content from all platforms");
    cmd->add_option("args", f->args, "<out> <image> ...");
    SetAction(cmd, [&app, f]() -> Status { return ExportAction(app, *f); });
  }
}

}  // namespace berth::cli
