// `berth containers`: ctr's container commands, and run.NewContainer (shared with `run`).
#include <github.com/containerd/containerd/pkg/runtimeoptions/v1/api.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/format.h"
#include "cli/run.h"
#include "cli/suggest.h"
#include "cli/table.h"
#include "cli/tabwriter.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/timeutil.h"
#include "oci/spec.h"

namespace berth::cli {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::map<std::string, std::string> KeyValues(const std::vector<std::string>& args) {
  return LabelArgs(args, 0);
}

// commands.AnnotationArgs: "k=v" only.
Result<std::map<std::string, std::string>> AnnotationArgs(const std::vector<std::string>& args) {
  std::map<std::string, std::string> out;
  for (const auto& a : args) {
    auto eq = a.find('=');
    if (eq == std::string::npos) return Unknown("annotations must be formatted key=value");
    out[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return out;
}

bool ValidNamespaceType(std::string_view t) {
  return t == "pid" || t == "network" || t == "uts" || t == "mount" || t == "user" || t == "ipc" ||
         t == "cgroup";
}

// getRuntimeOptions.
Result<std::optional<google::protobuf::Any>> RuntimeOptions(const ContainerFlags& f) {
  if ((!f.runc_binary.empty() || f.runc_systemd_cgroup) && f.runtime != kDefaultRuntime) {
    return Unknown(
        "specifying runc-binary and runc-systemd-cgroup is only supported for "
        "\"io.containerd.runc.v2\" runtime");
  }
  if (f.runtime == kDefaultRuntime) {
    containerd::runc::v1::Options o;
    if (!f.runc_binary.empty()) o.set_binary_name(f.runc_binary);
    if (f.runc_systemd_cgroup) {
      if (!f.cgroup || f.cgroup->empty()) {
        return Unknown(
            "option --runc-systemd-cgroup requires --cgroup to be set, e.g. "
            "\"machine.slice:foo:deadbeef\"");
      }
      o.set_systemd_cgroup(true);
    }
    if (!f.runc_root.empty()) o.set_root(f.runc_root);
    google::protobuf::Any any;
    any.set_type_url(kRuncOptionsTypeUrl);
    any.set_value(o.SerializeAsString());
    return std::optional<google::protobuf::Any>(any);
  }
  if (!f.runtime_config_path.empty()) {
    runtimeoptions::v1::Options o;
    o.set_config_path(f.runtime_config_path);
    google::protobuf::Any any;
    any.set_type_url("runtimeoptions.v1.Options");
    any.set_value(o.SerializeAsString());
    return std::optional<google::protobuf::Any>(any);
  }
  return std::optional<google::protobuf::Any>();
}

// Options that follow the image (or rootfs) part of run.NewContainer, in ctr's order.
Status ApplyContainerOptions(oci::Spec& s, const ContainerFlags& f,
                             const std::vector<std::string>& cmd, const oci::RootFs& root) {
  if (f.read_only) oci::WithRootFsReadonly(s);
  if (!cmd.empty()) oci::WithProcessArgs(s, cmd);
  if (!f.cwd.empty()) oci::WithProcessCwd(s, f.cwd);
  if (f.tty) oci::WithTty(s);
  if (f.privileged) BERTH_TRY(oci::WithPrivilegedAll(s));
  if (f.net_host) BERTH_TRY(oci::WithHostNetwork(s));
  if (!f.annotations.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto annos, AnnotationArgs(f.annotations));
    oci::WithAnnotations(s, annos);
  }
  for (const auto* caps : {&f.cap_add, &f.cap_drop}) {
    for (const auto& c : *caps) {
      if (!c.starts_with("CAP_")) {
        return Unknown("capabilities must be specified with 'CAP_' prefix");
      }
    }
  }
  if (!f.cap_add.empty()) oci::WithAddedCapabilities(s, f.cap_add);
  if (!f.cap_drop.empty()) oci::WithDroppedCapabilities(s, f.cap_drop);
  if (!f.seccomp && !f.seccomp_profile.empty()) {
    return Unknown("seccomp must be set to true, if using a custom seccomp-profile");
  }
  if (f.seccomp) {
    return NotImplemented("--seccomp: berth has no default seccomp profile yet");
  }
  if (f.cpus > 0.0) oci::WithCpus(s, f.cpus);
  if (f.cpu_shares > 0) oci::WithCpuShares(s, static_cast<uint64_t>(f.cpu_shares));
  if (f.cpu_quota != -1 || f.cpu_period != 0) {
    if (f.cpus > 0.0) return Unknown("cpus and quota/period should be used separately");
    oci::WithCpuCfs(s, f.cpu_quota, f.cpu_period);
  }
  for (const auto& ns : f.with_ns) {
    auto colon = ns.find(':');
    if (colon == std::string::npos || ns.find(':', colon + 1) != std::string::npos) {
      return Unknown("joining a Linux namespace using --with-ns requires the format 'nstype:path'");
    }
    std::string type = ns.substr(0, colon);
    if (!ValidNamespaceType(type)) {
      return Unknown("the Linux namespace type specified in --with-ns is not valid: " + type);
    }
    oci::WithLinuxNamespace(s, type, ns.substr(colon + 1));
  }
  if (f.allow_new_privs) oci::WithNewPrivileges(s);
  if (f.cgroup) oci::WithCgroup(s, *f.cgroup);
  if (f.memory_limit != 0) oci::WithMemoryLimit(s, f.memory_limit);
  if (!f.devices.empty()) return NotImplemented("--device is not supported by berth yet");
  if (!f.rootfs_propagation.empty()) s["linux"]["rootfsPropagation"] = f.rootfs_propagation;
  if (!f.user.empty()) BERTH_TRY(oci::WithUser(s, f.user, root));
  return Ok();
}

Result<std::string> ReadFileText(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoError(errno, "cannot load spec config file: open " + path);
  std::string out;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

std::unique_ptr<containers_api::Containers::Stub> ContainersStub(const Session& session) {
  return containers_api::Containers::NewStub(session.Channel());
}

}  // namespace

void AddContainerFlags(CLI::App* cmd, ContainerFlags& f) {
  cmd->add_option("--snapshotter", f.snapshotter,
                  "snapshotter name. Empty value stands for the default value.")
      ->envname("CONTAINERD_SNAPSHOTTER");
  cmd->add_option("--snapshotter-label", f.snapshotter_labels,
                  "labels added to the new snapshot for this container.")

      ->allow_extra_args(false);
  cmd->add_option("-c,--config", f.config, "path to the runtime-specific spec config file");
  cmd->add_option("--cwd", f.cwd, "specify the working directory of the process");
  cmd->add_option("--env", f.env,
                  "specify additional container environment variables (e.g. FOO=bar)")
      ->allow_extra_args(false);
  cmd->add_option("--env-file", f.env_file,
                  "specify additional container environment variables in a file(e.g. FOO=bar, "
                  "one per line)");
  cmd->add_option("--label", f.labels, "specify additional labels (e.g. foo=bar)")
      ->allow_extra_args(false);
  cmd->add_option("--annotation", f.annotations,
                  "specify additional OCI annotations (e.g. foo=bar)")
      ->allow_extra_args(false);
  cmd->add_option("--mount", f.mounts,
                  "specify additional container mount (e.g. "
                  "type=bind,src=/tmp,dst=/host,options=rbind:ro)")
      ->allow_extra_args(false);
  cmd->add_flag("--net-host", f.net_host, "enable host networking for the container");
  cmd->add_flag("--privileged", f.privileged, "run privileged container");
  cmd->add_flag("--read-only", f.read_only, "set the containers filesystem as readonly");
  cmd->add_option("--runtime", f.runtime, "runtime name")->capture_default_str();
  cmd->add_option("--runtime-config-path", f.runtime_config_path, "optional runtime config path");
  cmd->add_flag("-t,--tty", f.tty, "allocate a TTY for the container");
  cmd->add_option("--with-ns", f.with_ns,
                  "specify existing Linux namespaces to join at container runtime (format "
                  "'<nstype>:<path>')")
      ->allow_extra_args(false);
  cmd->add_option("--pid-file", f.pid_file, "file path to write the task's pid");
  cmd->add_flag("--allow-new-privs", f.allow_new_privs,
                "turn off OCI spec's NoNewPrivileges feature flag");
  cmd->add_option("--memory-limit", f.memory_limit, "memory limit (in bytes) for the container");
  cmd->add_option("--device", f.devices,
                  "file path to a device to add to the container; or a path to a directory "
                  "tree of devices to add to the container")
      ->allow_extra_args(false);
  cmd->add_option("--cap-add", f.cap_add,
                  "add Linux capabilities (Set capabilities with 'CAP_' prefix)")
      ->allow_extra_args(false);
  cmd->add_option("--cap-drop", f.cap_drop,
                  "drop Linux capabilities (Set capabilities with 'CAP_' prefix)")
      ->allow_extra_args(false);
  cmd->add_flag("--seccomp", f.seccomp, "enable the default seccomp profile");
  cmd->add_option("--seccomp-profile", f.seccomp_profile,
                  "file path to custom seccomp profile. seccomp must be set to true, before "
                  "using seccomp-profile");
  cmd->add_flag("--rootfs", f.rootfs,
                "use custom rootfs that is not managed by containerd snapshotter");
  cmd->add_flag("--no-pivot", f.no_pivot, "disable use of pivot-root (linux only)");
  cmd->add_option("--cpu-quota", f.cpu_quota, "Limit CPU CFS quota")->capture_default_str();
  cmd->add_option("--cpu-period", f.cpu_period, "Limit CPU CFS period");
  cmd->add_option("--rootfs-propagation", f.rootfs_propagation,
                  "set the propagation of the container rootfs");
  cmd->add_option("--runc-binary", f.runc_binary, "specify runc-compatible binary");
  cmd->add_option("--runc-root", f.runc_root, "specify runc-compatible root");
  cmd->add_flag("--runc-systemd-cgroup", f.runc_systemd_cgroup,
                "start runc with systemd cgroup manager");
  cmd->add_option("--cpus", f.cpus, "set the CFS cpu quota");
  cmd->add_option("--cpu-shares", f.cpu_shares, "set the cpu shares")->capture_default_str();
  cmd->add_option_function<std::string>(
      "--cgroup", [&f](const std::string& v) { f.cgroup = v; },
      "cgroup path (To disable use of cgroup, set to \"\" explicitly)");
  cmd->add_option("--platform", f.platform, "run image for specific platform");
  cmd->add_option("-u,--user", f.user,
                  "user[:group] for the process, names resolved in the image (berth extension)");
}

Result<std::string> ContainerSpecJson(const containers_api::Container& c) {
  if (!c.has_spec()) return NotFound(fmt::format("container {:?} has no spec", c.id()));
  return c.spec().value();
}

Result<containers_api::Container> NewContainer(const Session& session, const ContainerFlags& f,
                                               const std::vector<std::string>& args) {
  const bool config = !f.config.empty();
  std::string id;
  std::string ref;
  if (config) {
    if (args.size() > 1) {
      return InvalidArgument("with spec config file, only container id should be provided");
    }
    id = args.empty() ? "" : args[0];
  } else {
    ref = args.empty() ? "" : args[0];
    id = args.size() > 1 ? args[1] : "";
    if (ref.empty()) return InvalidArgument("image ref must be provided");
  }
  if (id.empty()) return InvalidArgument("container id must be provided");
  std::vector<std::string> cmd;
  if (args.size() > 2) cmd.assign(args.begin() + 2, args.end());
  // A used id is the container's conflict, not its snapshot's (which would be prepared first
  // and answer `snapshot "<id>": already exists`).
  if (GetContainer(session, id)) {
    return AlreadyExists(fmt::format("container \"{}\"", id));  // "...: already exists"
  }

  BERTH_ASSIGN_OR_RETURN(LeasedSession leased, WithLease(session));
  struct Done {
    std::function<void()> fn;
    ~Done() {
      if (fn) fn();
    }
  } done{leased.done};
  const Session& s = leased.session;

  containers_api::Container c;
  c.set_id(id);
  std::map<std::string, std::string> labels;
  oci::Spec spec;
  std::optional<SnapshotClient> prepared;  // removed again if creation fails
  auto fail = [&](Error err) -> Error {
    if (prepared) (void)prepared->Remove(id);
    return err;
  };

  if (config) {
    labels = KeyValues(f.labels);
    BERTH_ASSIGN_OR_RETURN(std::string text, ReadFileText(f.config));
    spec = json::parse(text, nullptr, false);
    if (spec.is_discarded() || !spec.is_object()) {
      return InvalidArgument("cannot load spec config file: " + f.config + " is not a JSON object");
    }
  } else {
    spec = oci::DefaultSpec(session.Namespace(), id);
    oci::WithDefaultUnixDevices(spec);
    if (!f.env_file.empty()) BERTH_TRY(oci::WithEnvFile(spec, f.env_file));
    oci::WithEnv(spec, f.env);
    std::vector<oci::SpecMount> mounts;
    for (const auto& m : f.mounts) {
      BERTH_ASSIGN_OR_RETURN(auto parsed, oci::ParseMountFlag(m));
      mounts.push_back(std::move(parsed));
    }
    oci::WithMounts(spec, mounts);

    if (f.rootfs) {
      std::string rootfs = ref;
      if (rootfs[0] != '/') {
        char cwd[4096];
        if (::getcwd(cwd, sizeof cwd) == nullptr) return ErrnoError(errno, "getcwd");
        rootfs = std::string(cwd) + "/" + rootfs;
      }
      oci::WithRootFsPath(spec, rootfs);
      labels = KeyValues(f.labels);
      BERTH_TRY(ApplyContainerOptions(spec, f, cmd, rootfs));
    } else {
      BERTH_ASSIGN_OR_RETURN(std::string snapshotter, ResolveSnapshotterName(s, f.snapshotter));
      BERTH_ASSIGN_OR_RETURN(ref, ImageNameOrAsGiven(s, ref));  // short names too
      auto found = LibClient(s).GetImage(ref);
      if (!found) return ImageNotFound(s, ref, std::move(found).error());
      const berth::Image& image = *found;
      OciDescriptor target{image.Target().media_type, image.Target().digest, image.Target().size,
                           std::nullopt};
      Platform platform = DefaultPlatform();
      if (!f.platform.empty()) {
        // The same parser as run's and pull's --platform (platforms.Parse): a lone word is an
        // os or an architecture, whichever it names.
        auto parsed = images::ParsePlatformSpec(f.platform);
        if (!parsed) {
          return std::move(parsed).error().Wrap(
              fmt::format("unable to parse platform {}", f.platform));
        }
        platform = *parsed;
      }
      auto matcher = PlatformMatcher::Only(platform);
      BlobReader reader = [&s](const OciDescriptor& d) { return ReadContent(s, d); };
      BERTH_ASSIGN_OR_RETURN(auto manifest, ImageManifest(reader, target, matcher));
      BERTH_ASSIGN_OR_RETURN(auto diff_ids, ImageRootFs(reader, target, matcher));
      std::string chain = ChainId(diff_ids);
      SnapshotClient snapshots(s, snapshotter);
      // image.IsUnpacked, else image.Unpack.
      if (auto st = snapshots.Stat(chain); !st) {
        if (!st.error().Is(Errc::kNotFound)) return std::move(st).error();
        BERTH_TRY(UnpackImage(s, target, matcher, {.snapshotter = snapshotter}));
      }
      BERTH_ASSIGN_OR_RETURN(std::string config_blob, ReadContent(s, manifest.config));
      BERTH_ASSIGN_OR_RETURN(oci::ImageConfig image_config, oci::ParseImageConfig(config_blob));

      // buildLabels: image labels that validate, then --label.
      std::map<std::string, std::string> extra;
      for (const auto& [k, v] : image.Labels()) {
        if (Status st = berth::labels::Validate(k, v); !st) {
          log::L()
              .WithError(st.error())
              .Warn("unable to add image label with key " + k + " to the container");
          continue;
        }
        extra[k] = v;
      }
      for (const auto& [k, v] : KeyValues(f.labels)) extra[k] = v;
      labels = image_config.labels;  // WithImageConfigLabels
      for (const auto& [k, v] : extra) labels[k] = v;
      labels[kStopSignalLabel] =
          image_config.stop_signal.empty() ? "SIGTERM" : image_config.stop_signal;

      c.set_image(image.Name());
      c.set_snapshotter(snapshotter);
      c.set_snapshot_key(id);
      BERTH_TRY(snapshots.Prepare(id, chain, KeyValues(f.snapshotter_labels)));
      prepared.emplace(snapshots);

      // The spec options that read the image's files run on a read-only mount of the snapshot.
      Status st = WithContainerRoot(s, c, [&](const std::optional<std::string>& root) -> Status {
        BERTH_TRY(oci::WithImageConfig(spec, image_config, root));
        return ApplyContainerOptions(spec, f, cmd, root);
      });
      if (!st) return fail(std::move(st).error());
    }
  }

  auto runtime_options = RuntimeOptions(f);
  if (!runtime_options) return fail(std::move(runtime_options).error());
  c.mutable_runtime()->set_name(f.runtime);
  if (*runtime_options) *c.mutable_runtime()->mutable_options() = **runtime_options;
  oci::WithAnnotations(spec, KeyValues(f.labels));
  c.mutable_spec()->set_type_url(std::string(oci::kSpecTypeUrl));
  c.mutable_spec()->set_value(spec.dump());
  for (const auto& [k, v] : labels) (*c.mutable_labels())[k] = v;

  containers_api::CreateContainerRequest req;
  *req.mutable_container() = c;
  containers_api::CreateContainerResponse resp;
  auto ctx = s.Context();
  if (auto st = ContainersStub(s)->Create(ctx.get(), req, &resp); !st.ok()) {
    return fail(FromGrpc(st));
  }
  return resp.container();
}

Result<containers_api::Container> GetContainer(const Session& session, const std::string& id) {
  containers_api::GetContainerRequest req;
  req.set_id(id);
  containers_api::GetContainerResponse resp;
  auto ctx = session.Context();
  if (auto st = ContainersStub(session)->Get(ctx.get(), req, &resp); !st.ok()) {
    return ContainerNotFound(session, id, FromGrpc(st));
  }
  return resp.container();
}

Status DeleteContainer(const Session& session, const containers_api::Container& c,
                       bool cleanup_snapshot) {
  if (LoadTask(session, c.id())) {
    return FailedPrecondition(fmt::format("cannot delete running task {}", c.id()));
  }
  if (cleanup_snapshot && !c.snapshot_key().empty() && !c.snapshotter().empty()) {
    SnapshotClient snapshots(session, c.snapshotter());
    if (Status st = snapshots.Remove(c.snapshot_key()); !st && !st.error().Is(Errc::kNotFound)) {
      return st;
    }
  }
  containers_api::DeleteContainerRequest req;
  req.set_id(c.id());
  google::protobuf::Empty resp;
  auto ctx = session.Context();
  if (auto st = ContainersStub(session)->Delete(ctx.get(), req, &resp); !st.ok()) {
    return FromGrpc(st);
  }
  return Ok();
}

namespace {

// gogo types.Any in Go's JSON: type_url and base64 value, both omitempty.
ojson AnyJson(const google::protobuf::Any& any) {
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  ojson j = ojson::object();
  if (!any.type_url().empty()) j["type_url"] = any.type_url();
  const std::string& v = any.value();
  if (!v.empty()) {
    std::string out;
    size_t i = 0;
    for (; i + 2 < v.size(); i += 3) {
      uint32_t n = (uint8_t(v[i]) << 16) | (uint8_t(v[i + 1]) << 8) | uint8_t(v[i + 2]);
      for (int s = 18; s >= 0; s -= 6) out += kB64[(n >> s) & 63];
    }
    if (i + 1 == v.size()) {
      uint32_t n = uint8_t(v[i]) << 16;
      out += kB64[(n >> 18) & 63];
      out += kB64[(n >> 12) & 63];
      out += "==";
    } else if (i + 2 == v.size()) {
      uint32_t n = (uint8_t(v[i]) << 16) | (uint8_t(v[i + 1]) << 8);
      out += kB64[(n >> 18) & 63];
      out += kB64[(n >> 12) & 63];
      out += kB64[(n >> 6) & 63];
      out += '=';
    }
    j["value"] = out;
  }
  return j;
}

// commands.PrintAsJSON of containers.Container (the spec decoded and moved last, as ctr's
// anonymous struct shadows it).
ojson ContainerJson(const containers_api::Container& c) {
  ojson j;
  j["ID"] = c.id();
  if (c.labels().empty()) {
    j["Labels"] = nullptr;
  } else {
    ojson labels = ojson::object();
    std::map<std::string, std::string> sorted(c.labels().begin(), c.labels().end());
    for (const auto& [k, v] : sorted) labels[k] = v;
    j["Labels"] = labels;
  }
  j["Image"] = c.image();
  ojson runtime;
  runtime["Name"] = c.runtime().name();
  runtime["Options"] = c.runtime().has_options() ? AnyJson(c.runtime().options()) : ojson();
  j["Runtime"] = runtime;
  bool has_spec = c.has_spec() && !c.spec().value().empty();
  if (!has_spec) j["Spec"] = c.has_spec() ? AnyJson(c.spec()) : ojson();
  j["SnapshotKey"] = c.snapshot_key();
  j["Snapshotter"] = c.snapshotter();
  j["CreatedAt"] = FormatProtoTime(c.created_at());
  j["UpdatedAt"] = FormatProtoTime(c.updated_at());
  if (c.extensions().empty()) {
    j["Extensions"] = nullptr;
  } else {
    ojson ext = ojson::object();
    std::map<std::string, google::protobuf::Any> sorted(c.extensions().begin(),
                                                        c.extensions().end());
    for (const auto& [k, v] : sorted) ext[k] = AnyJson(v);
    j["Extensions"] = ext;
  }
  if (has_spec) {
    ojson spec = ojson::parse(c.spec().value(), nullptr, false);
    j["Spec"] = spec.is_discarded() ? ojson(c.spec().value()) : spec;
  }
  return j;
}

Status CreateAction(App& app, const ContainerFlags& flags, const std::vector<std::string>& args) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_TRY(NewContainer(session, flags, args));
  return Ok();
}

Status ListAction(App& app, bool quiet, const std::string& format,
                  const std::vector<std::string>& filters) {
  BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(format));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  containers_api::ListContainersRequest req;
  for (const auto& f : filters) req.add_filters(f);
  containers_api::ListContainersResponse resp;
  auto ctx = session.Context();
  if (auto st = ContainersStub(session)->List(ctx.get(), req, &resp); !st.ok()) {
    return FromGrpc(st);
  }
  if (quiet) {
    for (const auto& c : resp.containers()) fmt::print("{}\n", c.id());
    return Ok();
  }
  Table table({{"CONTAINER", "id"},
               {"IMAGE", "image"},
               {"RUNTIME", "runtime"},
               {"", "snapshotter"},
               {"", "snapshot_key"},
               {"", "labels"},
               {"", "created_at"},
               {"", "updated_at"}},
              {.writer = TabWriter(4, 4)});
  for (const auto& c : resp.containers()) {
    table.Add({c.id(), Cell(c.image().empty() ? "-" : c.image(), c.image()), c.runtime().name(),
               c.snapshotter(), c.snapshot_key(),
               LabelsCell(std::map<std::string, std::string>(c.labels().begin(), c.labels().end())),
               TimeCell("", c.created_at().seconds(), c.created_at().nanos()),
               TimeCell("", c.updated_at().seconds(), c.updated_at().nanos())});
  }
  fmt::print("{}", table.Render(output));
  return Ok();
}

Status DeleteAction(App& app, bool keep_snapshot, const std::vector<std::string>& ids) {
  if (ids.empty()) {
    return InvalidArgument("must specify at least one container to delete");
  }
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  std::optional<Error> exit_error;
  for (const auto& id : ids) {
    // ctr's deleteContainer: a stopped or created task goes first; a live one refuses.
    Status st = [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(session, id));
      if (auto task = LoadTask(session, id)) {
        BERTH_ASSIGN_OR_RETURN(auto status, task->GetStatus());
        if (status.state != berth::TaskState::kStopped &&
            status.state != berth::TaskState::kCreated) {
          std::string_view name = berth::StateName(status.state);
          // ctr prints Go's %v of its status struct here ({running 0 0001-01-01 ...}).
          return Unknown(fmt::format(
              "cannot delete a non stopped container {:?}: its task is {} (stop it first: "
              "berth tasks kill {}, or berth tasks rm -f {})",
              id, name, id, id));
        }
        BERTH_TRY(task->Delete());
      }
      return DeleteContainer(session, c, !keep_snapshot);
    }();
    if (!st) {
      // The first failure is the command's error, printed once at exit; later ones (several
      // ids) are logged as they happen. ctr logs the first one twice.
      if (!exit_error) {
        exit_error = st.error();
      } else {
        log::L().WithError(st.error()).Error(fmt::format("failed to delete container {:?}", id));
      }
    }
  }
  if (exit_error) return *exit_error;
  return Ok();
}

Status LabelAction(App& app, const std::vector<std::string>& args) {
  std::string id = args.empty() ? "" : args[0];
  if (id.empty()) return InvalidArgument("container id must be provided");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  auto labels = LabelArgs(args, 1);
  BERTH_TRY(GetContainer(session, id));
  containers_api::UpdateContainerRequest req;
  req.mutable_container()->set_id(id);
  for (const auto& [k, v] : labels) {
    (*req.mutable_container()->mutable_labels())[k] = v;
    req.mutable_update_mask()->add_paths("labels." + k);
  }
  containers_api::UpdateContainerResponse resp;
  auto ctx = session.Context();
  if (auto st = ContainersStub(session)->Update(ctx.get(), req, &resp); !st.ok()) {
    return FromGrpc(st);
  }
  std::map<std::string, std::string> set(resp.container().labels().begin(),
                                         resp.container().labels().end());
  fmt::print("{}\n", JoinLabels(set));
  return Ok();
}

Status InfoAction(App& app, bool spec_only, const std::string& id) {
  if (id.empty()) return InvalidArgument("container id must be provided");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(session, id));
  if (spec_only) {
    if (!c.has_spec()) return InvalidArgument("container has no spec");
    ojson spec = ojson::parse(c.spec().value(), nullptr, false);
    if (spec.is_discarded()) return InvalidArgument("container spec is not JSON");
    fmt::print("{}\n", spec.dump(4));
    return Ok();
  }
  fmt::print("{}\n", ContainerJson(c).dump(4));
  return Ok();
}

}  // namespace

void AddContainersCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("containers", "manage containers");
  group->alias("c");
  group->alias("container");
  group->require_subcommand(1);
  {
    auto* cmd = group->add_subcommand(
        "create",
        "create container\n  berth containers create [flags] Image|RootFS CONTAINER "
        "[COMMAND] [ARG...]");
    auto flags = std::make_shared<ContainerFlags>();
    AddContainerFlags(cmd, *flags);
    // Everything from the image on is positional (ctr's SkipArgReorder): "sh -c x" stays args.
    cmd->prefix_command();
    cmd->fallthrough(false);
    SetAction(cmd, [&app, flags, cmd]() -> Status {
      RequireKnownFlags(cmd->remaining());
      return CreateAction(app, *flags, cmd->remaining());
    });
  }
  {
    auto* cmd = group->add_subcommand("delete", "delete one or more existing containers");
    cmd->alias("del");
    cmd->alias("remove");
    cmd->alias("rm");
    auto keep = std::make_shared<bool>(false);
    auto ids = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("--keep-snapshot", *keep, "do not clean up snapshot with container");
    cmd->add_option("containers", *ids, "CONTAINER [CONTAINER, ...]");
    SetAction(cmd, [&app, keep, ids]() -> Status { return DeleteAction(app, *keep, *ids); });
  }
  {
    auto* cmd = group->add_subcommand("info", "get info about a container");
    auto spec = std::make_shared<bool>(false);
    auto id = std::make_shared<std::string>();
    cmd->add_flag("--spec", *spec, "only display the spec");
    cmd->add_option("container", *id, "CONTAINER");
    SetAction(cmd, [&app, spec, id]() -> Status { return InfoAction(app, *spec, *id); });
  }
  {
    auto* cmd = group->add_subcommand("list", "list containers");
    cmd->alias("ls");
    auto quiet = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    auto filters = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("-q,--quiet", *quiet, "print only the container id");
    AddFormatFlag(cmd, format);
    cmd->add_option("filters", *filters, "[<filter>, ...]");
    SetAction(cmd, [&app, quiet, format, filters]() -> Status {
      return ListAction(app, *quiet, *format, *filters);
    });
  }
  {
    auto* cmd = group->add_subcommand("label", "set and clear labels for a container");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "CONTAINER [<key>=<value>, ...]");
    SetAction(cmd, [&app, args]() -> Status { return LabelAction(app, *args); });
  }
}

}  // namespace berth::cli
