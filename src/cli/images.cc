// `berth images`: ctr's image commands over the Images service, walking manifests in the
// content store the way ctr's client does.
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>

#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/suggest.h"
#include "cli/table.h"
#include "cli/tabwriter.h"
#include "common/log.h"

namespace berth::cli {
namespace {

namespace content_api = containerd::services::content::v1;
namespace images_api = containerd::services::images::v1;
namespace leases_api = containerd::services::leases::v1;
namespace ns_api = containerd::services::namespaces::v1;
namespace snapshots_api = containerd::services::snapshots::v1;

constexpr const char* kDefaultSnapshotterLabel = "containerd.io/defaults/snapshotter";
constexpr const char* kDefaultSnapshotter = "overlayfs";

Result<std::unique_ptr<images_api::Images::Stub>> Stub(App& app) {
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  return images_api::Images::NewStub(channel);
}

// The content store as the Go client's proxy sees it: ReaderAt = Info (for the size) + Read.
class ContentProvider {
 public:
  ContentProvider(App& app, std::shared_ptr<grpc::Channel> channel)
      : app_(app), channel_(channel), stub_(content_api::Content::NewStub(channel)) {}

  Status Stat(const OciDescriptor& desc) {
    auto info = Info(desc.digest);
    if (!info) return std::move(info).error();
    return Ok();
  }

  // Info for the size, then the Read stream (unpack.h's reader).
  Result<std::string> ReadBlob(const OciDescriptor& desc) {
    return ReadContent(client::Session(channel_, app_.Flags().ns), desc);
  }

  BlobReader Reader() {
    return [this](const OciDescriptor& d) { return ReadBlob(d); };
  }
  BlobStat Stater() {
    return [this](const OciDescriptor& d) { return Stat(d); };
  }

 private:
  Result<int64_t> Info(const std::string& digest) {
    content_api::InfoRequest req;
    req.set_digest(digest);
    content_api::InfoResponse resp;
    auto ctx = app_.NewContext();
    if (auto st = stub_->Info(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
    return resp.info().size();
  }

  App& app_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<content_api::Content::Stub> stub_;
};

OciDescriptor TargetOf(const images_api::Image& image) {
  OciDescriptor d;
  d.media_type = image.target().media_type();
  d.digest = image.target().digest();
  d.size = image.target().size();
  return d;
}

std::map<std::string, std::string> SortedLabels(
    const google::protobuf::Map<std::string, std::string>& labels) {
  return {labels.begin(), labels.end()};
}

// The snapshotter ctr would use: the flag, else the namespace's default label, else overlayfs.
Result<std::string> ResolveSnapshotter(App& app, const std::string& flag) {
  if (!flag.empty()) return flag;
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  auto stub = ns_api::Namespaces::NewStub(channel);
  ns_api::GetNamespaceRequest req;
  req.set_name(app.Flags().ns);
  ns_api::GetNamespaceResponse resp;
  auto ctx = app.NewContext();
  if (auto st = stub->Get(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  auto it = resp.namespace_().labels().find(kDefaultSnapshotterLabel);
  if (it != resp.namespace_().labels().end() && !it->second.empty()) return it->second;
  return std::string(kDefaultSnapshotter);
}

// client.Image.IsUnpacked: the chain of the platform's diff ids exists as a snapshot.
Result<bool> IsUnpacked(App& app, ContentProvider& provider, const images_api::Image& image,
                        const std::string& snapshotter_flag, const PlatformMatcher& platform) {
  BERTH_ASSIGN_OR_RETURN(std::string snapshotter, ResolveSnapshotter(app, snapshotter_flag));
  BERTH_ASSIGN_OR_RETURN(auto diffs, ImageRootFs(provider.Reader(), TargetOf(image), platform));
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  auto stub = snapshots_api::Snapshots::NewStub(channel);
  snapshots_api::StatSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(ChainId(diffs));
  snapshots_api::StatSnapshotResponse resp;
  auto ctx = app.NewContext();
  if (auto st = stub->Stat(ctx.get(), req, &resp); !st.ok()) {
    Error err = FromGrpc(st);
    if (err.Is(Errc::kNotFound)) return false;
    return err;
  }
  return true;
}

Result<std::vector<images_api::Image>> ListImages(App& app, images_api::Images::Stub& stub,
                                                  const std::vector<std::string>& filters) {
  images_api::ListImagesRequest req;
  for (const auto& f : filters) req.add_filters(f);
  images_api::ListImagesResponse resp;
  auto ctx = app.NewContext();
  if (auto st = stub.List(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return std::vector<images_api::Image>(resp.images().begin(), resp.images().end());
}

Status ListAction(App& app, bool quiet, const std::string& format,
                  const std::vector<std::string>& filters) {
  BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(format));
  BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
  auto images = ListImages(app, *stub, filters);
  if (!images) return std::move(images).error().Wrap("failed to list images");
  if (quiet) {
    for (const auto& image : *images) fmt::print("{}\n", image.name());
    return Ok();
  }
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  ContentProvider provider(app, channel);
  auto platform = PlatformMatcher::Only(DefaultPlatform());
  Table table({{"REF", "ref"},
               {"TYPE", "type"},
               {"DIGEST", "digest"},
               {"SIZE", "size"},
               {"PLATFORMS", "platforms"},
               {"LABELS", "labels"}},
              {});
  for (const auto& image : *images) {
    SizeResult size = ImageSize(provider.Reader(), TargetOf(image), platform);
    if (size.error) {
      log::L().WithError(*size.error).Error("failed calculating size for image " + image.name());
    }
    std::string platform_column = "-";
    auto platform_list = nlohmann::json::array();
    auto specs = ImagePlatforms(provider.Reader(), TargetOf(image));
    if (!specs) {
      log::L()
          .WithError(specs.error())
          .Error("failed resolving platform for image " + image.name());
    } else if (!specs->empty()) {
      std::set<std::string> formatted;
      for (const auto& p : *specs) formatted.insert(FormatPlatform(p));
      platform_column.clear();
      for (const auto& p : formatted) {
        if (!platform_column.empty()) platform_column += ',';
        platform_column += p;
        platform_list.push_back(p);
      }
    }
    table.Add({image.name(), image.target().media_type(), image.target().digest(),
               NumberCell(ProgressBytes(size.size), size.size),
               Cell(platform_column, std::move(platform_list)),
               LabelsCell(SortedLabels(image.labels()))});
  }
  fmt::print("{}", table.Render(output));
  return Ok();
}

Status CheckAction(App& app, bool quiet, const std::string& snapshotter,
                   const std::vector<std::string>& filters) {
  BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
  auto images = ListImages(app, *stub, filters);
  if (!images) return std::move(images).error().Wrap("failed listing images");
  if (images->empty()) return Ok();
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  ContentProvider provider(app, channel);
  auto platform = PlatformMatcher::Only(DefaultPlatform());
  std::optional<Error> exit_error;
  TabWriter tw(1, 1);
  if (!quiet) tw.Write("REF\tTYPE\tDIGEST\tSTATUS\tSIZE\tUNPACKED\t\n");
  for (const auto& image : *images) {
    std::string status = "complete";
    std::string size;
    bool complete = true;
    auto check = CheckImage(provider.Reader(), provider.Stater(), TargetOf(image), platform);
    if (!check) {
      if (!exit_error) exit_error = check.error().Wrap("unable to check " + image.name());
      log::L().WithError(check.error()).Error("unable to check " + image.name());
      status = "error";
      complete = false;
      size = "-";
    } else {
      int64_t required_size = 0;
      int64_t present_size = 0;
      for (const auto& d : check->required) required_size += d.size;
      for (const auto& d : check->present) present_size += d.size;
      if (!check->missing.empty()) {
        status = "incomplete";
        complete = false;
      }
      if (check->available) {
        status += fmt::format(" ({}/{})", check->present.size(), check->required.size());
        size = fmt::format("{}/{}", ProgressBytes(present_size), ProgressBytes(required_size));
      } else {
        status = fmt::format("unavailable ({}/?)", check->present.size());
        size = fmt::format("{}/?", ProgressBytes(present_size));
        complete = false;
      }
    }
    bool unpacked = false;
    auto is_unpacked = IsUnpacked(app, provider, image, snapshotter, platform);
    if (!is_unpacked) {
      if (!exit_error) {
        exit_error = is_unpacked.error().Wrap("unable to check unpack for " + image.name());
      }
      log::L().WithError(is_unpacked.error()).Error("unable to check unpack for " + image.name());
    } else {
      unpacked = *is_unpacked;
    }
    if (!quiet) {
      tw.Write(fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", image.name(), image.target().media_type(),
                           image.target().digest(), status, size, unpacked));
    } else if (complete) {
      fmt::print("{}\n", image.name());
    }
  }
  if (!quiet) fmt::print("{}", tw.Flush());
  if (exit_error) return *exit_error;
  return Ok();
}

Status RemoveAction(App& app, bool sync, const std::vector<std::string>& refs) {
  BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  std::optional<Error> exit_error;
  for (size_t i = 0; i < refs.size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(const std::string target, ImageNameOrAsGiven(session, refs[i]));
    images_api::DeleteImageRequest req;
    req.set_name(target);
    req.set_sync(sync && i + 1 == refs.size());
    google::protobuf::Empty resp;
    auto ctx = app.NewContext();
    if (auto st = stub->Delete(ctx.get(), req, &resp); !st.ok()) {
      Error err = FromGrpc(st);
      if (!err.Is(Errc::kNotFound)) {
        // The first failure is printed once, as the command's error; later ones are logged.
        if (!exit_error) {
          exit_error = err.Wrap("unable to delete " + target);
        } else {
          log::L().WithError(err).Error("unable to delete " + target);
        }
        continue;
      }
      log::L().Warn(target + ": image not found");
      continue;
    }
    fmt::print("{}\n", target);
  }
  if (exit_error) return *exit_error;
  return Ok();
}

Status LabelAction(App& app, bool replace_all, const std::vector<std::string>& args) {
  BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
  std::string name = args.empty() ? std::string() : args[0];
  if (name.empty()) return Unknown("please specify an image");
  {
    BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
    BERTH_ASSIGN_OR_RETURN(name, ImageNameOrAsGiven(session, name));  // short names too
  }
  auto labels = LabelArgs(args, 1);
  images_api::UpdateImageRequest req;
  req.mutable_image()->set_name(name);
  for (const auto& [k, v] : labels) {
    (*req.mutable_image()->mutable_labels())[k] = v;
    req.mutable_update_mask()->add_paths(replace_all ? "labels" : "labels." + k);
  }
  images_api::UpdateImageResponse resp;
  auto ctx = app.NewContext();
  if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  fmt::print("{}\n", JoinLabels(SortedLabels(resp.image().labels())));
  return Ok();
}

Status TagAction(App& app, bool force, const std::vector<std::string>& args) {
  if (args.empty() || args[0].empty()) {
    return Unknown("please provide an image reference to tag from");
  }
  if (args.size() <= 1) return Unknown("please provide an image reference to tag to");
  BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());

  // client.WithLease: a lease expiring in 24 h holds everything for the duration.
  auto leases = leases_api::Leases::NewStub(channel);
  leases_api::CreateRequest lreq;
  lreq.set_id(client::NewUniqueId());
  (*lreq.mutable_labels())["containerd.io/gc.expire"] = FormatRfc3339Local(
      std::chrono::duration_cast<std::chrono::seconds>(
          (std::chrono::system_clock::now() + std::chrono::hours(24)).time_since_epoch())
          .count());
  leases_api::CreateResponse lresp;
  {
    auto ctx = app.NewContext();
    if (auto st = leases->Create(ctx.get(), lreq, &lresp); !st.ok()) return FromGrpc(st);
  }
  const std::string lease_id = lresp.lease().id();
  auto leased_context = [&] {
    auto ctx = app.NewContext();
    ctx->AddMetadata("containerd-lease", lease_id);
    return ctx;
  };

  auto run = [&]() -> Status {
    images_api::GetImageRequest greq;
    {
      BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
      BERTH_ASSIGN_OR_RETURN(std::string source, ImageNameOrAsGiven(session, args[0]));
      greq.set_name(source);  // short names too
    }
    images_api::GetImageResponse gresp;
    {
      auto ctx = leased_context();
      if (auto st = stub->Get(ctx.get(), greq, &gresp); !st.ok()) return FromGrpc(st);
    }
    images_api::Image image = gresp.image();
    auto create = [&]() -> Status {
      images_api::CreateImageRequest creq;
      *creq.mutable_image() = image;
      images_api::CreateImageResponse cresp;
      auto ctx = leased_context();
      if (auto st = stub->Create(ctx.get(), creq, &cresp); !st.ok()) return FromGrpc(st);
      return Ok();
    };
    for (size_t i = 1; i < args.size(); ++i) {
      image.set_name(args[i]);
      Status created = create();
      if (!created) {
        if (!created.error().Is(Errc::kAlreadyExists) || !force) return created;
        images_api::DeleteImageRequest dreq;
        dreq.set_name(args[i]);
        google::protobuf::Empty dresp;
        auto ctx = leased_context();
        if (auto st = stub->Delete(ctx.get(), dreq, &dresp); !st.ok()) return FromGrpc(st);
        BERTH_TRY(create());
      }
      fmt::print("{}\n", args[i]);
    }
    return Ok();
  };
  Status result = run();
  leases_api::DeleteRequest dreq;
  dreq.set_id(lease_id);
  google::protobuf::Empty dresp;
  auto ctx = leased_context();
  (void)leases->Delete(ctx.get(), dreq, &dresp);
  return result;
}

}  // namespace

void AddImagesCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("images", "manage images");
  group->alias("image");
  group->alias("i");
  group->require_subcommand(1);

  {
    auto* cmd = group->add_subcommand(
        "check", "check existing images to ensure all content is available locally");
    auto quiet = std::make_shared<bool>(false);
    auto snapshotter = std::make_shared<std::string>();
    auto filters = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("-q,--quiet", *quiet,
                  "print only the ready image refs (fully downloaded and unpacked)");
    cmd->add_option("--snapshotter", *snapshotter,
                    "snapshotter name. Empty value stands for the default value.")
        ->envname("CONTAINERD_SNAPSHOTTER");
    cmd->add_option("filters", *filters, "[<filter>, ...]");
    SetAction(cmd, [&app, quiet, snapshotter, filters]() -> Status {
      return CheckAction(app, *quiet, *snapshotter, *filters);
    });
  }
  {
    auto* cmd = group->add_subcommand("list", "list images known to berthd");
    cmd->alias("ls");
    auto quiet = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    auto filters = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("-q,--quiet", *quiet, "print only the image refs");
    AddFormatFlag(cmd, format);
    cmd->add_option("filters", *filters, "[<filter>, ...]");
    SetAction(cmd, [&app, quiet, format, filters]() -> Status {
      return ListAction(app, *quiet, *format, *filters);
    });
  }
  {
    auto* cmd = group->add_subcommand("delete", "remove one or more images by reference");
    cmd->alias("del");
    cmd->alias("remove");
    cmd->alias("rm");
    auto sync = std::make_shared<bool>(false);
    auto refs = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("--sync", *sync, "Synchronously remove image and all associated resources");
    cmd->add_option("refs", *refs, "<ref> [<ref>, ...]");
    SetAction(cmd, [&app, sync, refs]() -> Status { return RemoveAction(app, *sync, *refs); });
  }
  {
    auto* cmd = group->add_subcommand("tag", "tag an image");
    auto force = std::make_shared<bool>(false);
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("--force", *force,
                  "force target_ref to be created, regardless if it already exists");
    cmd->add_option("refs", *args, "<source_ref> <target_ref> [<target_ref>, ...]");
    SetAction(cmd, [&app, force, args]() -> Status { return TagAction(app, *force, *args); });
  }
  {
    auto* cmd = group->add_subcommand("label", "set and clear labels for an image");
    auto replace_all = std::make_shared<bool>(false);
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("-r,--replace-all", *replace_all, "replace all labels");
    cmd->add_option("args", *args, "<name> [<key>=<value>, ...]");
    SetAction(cmd, [&app, replace_all, args]() -> Status {
      return LabelAction(app, *replace_all, *args);
    });
  }
  AddImagesMountCommands(group, app);
  AddImagesArchiveCommands(group, app);
  AddImagesPullCommands(group, app);
}

}  // namespace berth::cli
