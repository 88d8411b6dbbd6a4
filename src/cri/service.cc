// The CRI service's construction and the helpers its rpcs share: container records with their
// snapshots, runtime options from the config, spec options, events.
#include "cri/service.h"

#include <github.com/containerd/containerd/api/events/container.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>

#include <fmt/format.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "common/version.h"  // generated
#include "cri/cni/template.h"
#include "cri/images.h"
#include "transfer/stores.h"

namespace berth::cri {

Service::Service(ServiceOptions options)
    : options_(std::move(options)),
      containers_meta_(*options_.db),
      stores_(LocalStoresDeps{.content = options_.content,
                              .snapshotters = options_.snapshotters,
                              .applier = options_.applier,
                              .images = options_.images,
                              .leases = options_.leases,
                              .namespaces = options_.namespaces,
                              .publisher = options_.publisher}),
      io_work_(asio::make_work_guard(io_)) {}

Result<std::unique_ptr<Service>> Service::Create(ServiceOptions options) {
  for (const auto* d : {&options.root, &options.state}) BERTH_TRY(fs::MkdirAll(*d, 0711));
  for (const char* sub : {"/sandboxes", "/containers"}) {
    BERTH_TRY(fs::MkdirAll(options.root + sub, 0755));
    BERTH_TRY(fs::MkdirAll(options.state + sub, 0755));
  }
  std::unique_ptr<Service> s(new Service(std::move(options)));
  BERTH_ASSIGN_OR_RETURN(s->host_, spec::DetectHost());
  s->image_cache_ = std::make_unique<ImageCache>();
  cni::Config cc{.bin_dirs = {s->options_.config.cni_bin_dir},
                 .conf_dir = s->options_.config.cni_conf_dir,
                 .max_conf_num = s->options_.config.cni_max_conf_num,
                 .cache_dir = s->options_.cni_cache_dir,
                 .ip_pref = s->options_.config.cni_ip_pref};
  auto cni = cni::Cni::New(cc);
  if (!cni) return std::move(cni).error().Wrap("failed to initialize cni");
  s->cni_ = std::move(cni).value();
  if (auto st = mount::CleanupTempMounts(s->options_.state + "/tmpmounts"); !st) {
    log::L().WithError(st.error()).Warn("cleanup of cri temporary mounts");
  }
  s->io_thread_ = std::jthread([io = &s->io_] { io->run(); });
  s->Recover();
  if (auto st = s->StartStreamServer(); !st) {
    return std::move(st).error().Wrap("failed to start the cri streaming server");
  }
  return s;
}

Service::~Service() {
  {
    std::lock_guard lock(life_->mu);
    life_->alive = false;  // late task exits and events are dropped from now on
  }
  oom_events_.reset();
  StopStreamServer();
  pool_.join();
  // Containers outlive the daemon: keep their FIFOs for the next one (Detach, not Close).
  for (const auto& c : containers_.List()) {
    std::lock_guard lock(c->mu);
    if (c->io) c->io->Detach();
  }
  containers_.Clear();
  sandboxes_.Clear();
  io_work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

void Service::Publish(std::string_view topic, const google::protobuf::Message& event) {
  if (options_.publisher == nullptr) return;
  if (auto st = options_.publisher->Publish(Ctx(), topic, event); !st) {
    log::L().WithError(st.error()).Warn(fmt::format("publish {}", topic));
  }
}

spec::Options Service::SpecOptions(const RuntimeConfig& rc) const {
  const Config& c = options_.config;
  return spec::Options{
      .disable_cgroup = c.disable_cgroup,
      .disable_apparmor = c.disable_apparmor,
      .restrict_oom_score_adj = c.restrict_oom_score_adj,
      .disable_proc_mount = c.disable_proc_mount,
      .unset_seccomp_profile = c.unset_seccomp_profile,
      .tolerate_missing_hugetlb_controller = c.tolerate_missing_hugetlb_controller,
      .disable_hugetlb_controller = c.disable_hugetlb_controller,
      .device_ownership_from_security_context = c.device_ownership_from_security_context,
      .ignore_image_defined_volumes = c.ignore_image_defined_volumes,
      .enable_unprivileged_ports = c.enable_unprivileged_ports,
      .enable_unprivileged_icmp = c.enable_unprivileged_icmp,
      .systemd_cgroup = c.systemd_cgroup,
      .privileged_without_host_devices = rc.privileged_without_host_devices,
      .pod_annotations = rc.pod_annotations,
      .container_annotations = rc.container_annotations,
      .host = host_};
}

// containerd decodes `options` into the runtime's options message by Go field name; for the
// runc family that is containerd.runc.v1.Options.
Result<std::optional<google::protobuf::Any>> Service::RuntimeOptions(
    const RuntimeConfig& rc) const {
  if (!rc.runtime_type.starts_with("io.containerd.runc.") &&
      !rc.runtime_type.starts_with("io.containerd.berth.")) {
    return std::optional<google::protobuf::Any>();
  }
  containerd::runc::v1::Options o;
  const auto* desc = o.GetDescriptor();
  const auto* refl = o.GetReflection();
  for (const auto& [key, node] : rc.options) {
    std::string k(key.str());
    std::string json_name = k;
    if (!json_name.empty()) json_name[0] = static_cast<char>(std::tolower(json_name[0]));
    const google::protobuf::FieldDescriptor* f = nullptr;
    for (int i = 0; i < desc->field_count(); ++i) {
      if (desc->field(i)->json_name() == json_name) f = desc->field(i);
    }
    if (f == nullptr) {
      log::L().With("option", k).Warn("unknown runc runtime option ignored");
      continue;
    }
    using FD = google::protobuf::FieldDescriptor;
    switch (f->cpp_type()) {
      case FD::CPPTYPE_BOOL:
        if (!node.is_boolean())
          return InvalidArgument(fmt::format("runtime option {} must be a boolean", k));
        refl->SetBool(&o, f, *node.value<bool>());
        break;
      case FD::CPPTYPE_UINT32:
        if (!node.is_integer())
          return InvalidArgument(fmt::format("runtime option {} must be an integer", k));
        refl->SetUInt32(&o, f, static_cast<uint32_t>(*node.value<int64_t>()));
        break;
      case FD::CPPTYPE_STRING:
        if (!node.is_string())
          return InvalidArgument(fmt::format("runtime option {} must be a string", k));
        refl->SetString(&o, f, *node.value<std::string>());
        break;
      default:
        break;
    }
  }
  google::protobuf::Any any;
  any.set_type_url("containerd.runc.v1.Options");
  any.set_value(o.SerializeAsString());
  return std::optional<google::protobuf::Any>(std::move(any));
}

Result<std::vector<mount::Mount>> Service::SnapshotMounts(const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto* sn, options_.snapshotters->Get(options_.config.snapshotter));
  return sn->Mounts(Ctx(), id);
}

Status Service::CreateRecord(metadata::Container record, const std::string& parent,
                             bool mount_rootfs, const FillRecord& fill) {
  // containerd's NewContainer(WithNewSnapshot) runs under a temporary lease: the snapshot is
  // held by it until the record (a GC root) refers to it.
  BERTH_ASSIGN_OR_RETURN(transfer::Leased leased, transfer::WithLease(stores_, Ctx()));
  struct Done {
    std::function<void()> fn;
    ~Done() { fn(); }
  } done{leased.done};
  BERTH_ASSIGN_OR_RETURN(auto* sn, options_.snapshotters->Get(record.snapshotter));
  auto mounts = sn->Prepare(leased.ctx, record.snapshot_key, parent, {});
  if (!mounts) {
    return std::move(mounts).error().Wrap(
        fmt::format("failed to create snapshot {:?}", record.snapshot_key));
  }
  const std::string key = record.snapshot_key;
  Status filled =
      mount_rootfs ? mount::WithTempMount(
                         mount::ReadonlyMounts(*mounts), options_.state + "/tmpmounts",
                         [&](const std::string& rootfs) -> Status { return fill(rootfs, record); })
                   : fill("", record);
  if (!filled) {
    (void)sn->Remove(leased.ctx, key);
    return filled;
  }
  auto created = containers_meta_.Create(leased.ctx, std::move(record));
  if (!created) {
    (void)sn->Remove(leased.ctx, key);
    return std::move(created).error().Wrap("failed to create containerd container");
  }
  containerd::events::ContainerCreate ev;
  ev.set_id(created->id);
  ev.set_image(created->image);
  ev.mutable_runtime()->set_name(created->runtime.name);
  Publish("/containers/create", ev);
  return Ok();
}

Status Service::DeleteRecord(const std::string& id) {
  auto record = containers_meta_.Get(Ctx(), id);
  if (!record) {
    if (record.error().Is(Errc::kNotFound)) return Ok();
    return std::move(record).error();
  }
  if (!record->snapshot_key.empty()) {
    if (auto sn = options_.snapshotters->Get(record->snapshotter); sn) {
      if (auto st = (*sn)->Remove(Ctx(), record->snapshot_key);
          !st && !st.error().Is(Errc::kNotFound)) {
        return std::move(st).error().Wrap(
            fmt::format("failed to remove snapshot {:?}", record->snapshot_key));
      }
    }
  }
  if (auto st = containers_meta_.Delete(Ctx(), id); !st && !st.error().Is(Errc::kNotFound)) {
    return st;
  }
  containerd::events::ContainerDelete ev;
  ev.set_id(id);
  Publish("/containers/delete", ev);
  return Ok();
}

Result<std::string> Service::EnsurePauseSnapshot() {
  BERTH_ASSIGN_OR_RETURN(auto* sn, options_.snapshotters->Get(options_.config.snapshotter));
  std::lock_guard lock(pause_mu_);
  // The binary is read and hashed once per daemon run; the snapshot is checked every time (a
  // GC root, but an operator may remove it).
  if (!pause_key_.empty() && sn->Stat(Ctx(), pause_key_)) return pause_key_;
  BERTH_ASSIGN_OR_RETURN(std::string binary, fs::ReadFile(options_.pause_binary));
  const std::string key = "berth-pause@" + Digest::FromBytes(binary).String();
  pause_key_ = key;
  if (sn->Stat(Ctx(), key)) return key;
  BERTH_ASSIGN_OR_RETURN(transfer::Leased leased, transfer::WithLease(stores_, Ctx()));
  struct Done {
    std::function<void()> fn;
    ~Done() { fn(); }
  } done{leased.done};
  const std::string active = "berth-pause-extract-" + transfer::NewUniqueId();
  BERTH_ASSIGN_OR_RETURN(auto mounts, sn->Prepare(leased.ctx, active, "", {}));
  Status st = mount::WithTempMount(mounts, options_.state + "/tmpmounts",
                                   [&](const std::string& root) -> Status {
                                     return fs::WriteFileAtomic(root + "/pause", binary, 0755);
                                   });
  if (st) {
    // A GC root: the parent of every sandbox snapshot, kept while no sandbox exists too.
    st = sn->Commit(leased.ctx, key, active, {{"containerd.io/gc.root", FormatRfc3339Nano(Now())}});
  }
  if (!st) {
    (void)sn->Remove(leased.ctx, active);
    if (st.error().Is(Errc::kAlreadyExists)) return key;  // made meanwhile
    return std::move(st).error().Wrap("failed to prepare the berth-pause snapshot");
  }
  return key;
}

Status Service::Version(const v1::VersionRequest& /*req*/, v1::VersionResponse* resp) {
  // As containerd answers (kubelet and crictl show these): the CRI version, the runtime name
  // "containerd" (berth is its drop-in), berth's own version, the API version.
  resp->set_version("0.1.0");
  resp->set_runtime_name("containerd");
  resp->set_runtime_version(kVersion);
  resp->set_runtime_api_version("v1");
  return Ok();
}

Status Service::RuntimeStatus(const v1::StatusRequest& req, v1::StatusResponse* resp) {
  auto* rc = resp->mutable_status()->add_conditions();
  rc->set_type("RuntimeReady");
  rc->set_status(true);
  auto* nc = resp->mutable_status()->add_conditions();
  nc->set_type("NetworkReady");
  if (auto st = cni_->Ready(); st) {
    nc->set_status(true);
  } else {
    nc->set_status(false);
    nc->set_reason("NetworkPluginNotReady");
    nc->set_message("Network plugin returns error: " + st.error().What());
  }
  if (req.verbose()) {
    nlohmann::json cfg = {
        {"sandboxImage", options_.config.sandbox_image},
        {"snapshotter", options_.config.snapshotter},
        {"defaultRuntimeName", options_.config.default_runtime_name},
        {"netnsMountsUnderStateDir", options_.config.netns_mounts_under_state_dir},
        {"maxContainerLogLineSize", options_.config.max_container_log_line_size},
        {"containerdRootDir", options_.daemon_root},
        {"containerdEndpoint", ""},
        {"rootDir", options_.root},
        {"stateDir", options_.state}};
    (*resp->mutable_info())["config"] = cfg.dump();
    (*resp->mutable_info())["cniconfig"] = cni_->ConfigJson().dump();
    (*resp->mutable_info())["lastCNILoadStatus"] = cni_->LoadStatus();
  }
  return Ok();
}

Status Service::UpdateRuntimeConfig(const v1::UpdateRuntimeConfigRequest& req) {
  const std::string& cidrs = req.runtime_config().network_config().pod_cidr();
  if (cidrs.empty() || options_.config.cni_conf_template.empty()) return Ok();
  if (cni_->Ready()) return Ok();  // a network config exists already
  if (auto st = cni_->Reload(); st) return Ok();
  std::vector<std::string> list;
  size_t start = 0;
  while (start <= cidrs.size()) {
    size_t comma = cidrs.find(',', start);
    std::string part =
        cidrs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) list.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  BERTH_TRY(cni::WriteConfFromTemplate(options_.config.cni_conf_template,
                                       options_.config.cni_conf_dir, list));
  return Ok();
}

}  // namespace berth::cri
