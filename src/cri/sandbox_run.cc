// RunPodSandbox (containerd 1.6 sandbox_run.go; reference/cri.md §3): reserve the name, make
// sure the sandbox image (or berth's own pause) is there, pin a network namespace and attach it
// to the CNI networks, write hostname/hosts/resolv.conf and mount the pod's shm, create the
// sandbox container and start its task. A failure unwinds every step already taken.
#include <sys/mount.h>
#include <unistd.h>

#include <future>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "cri/persist.h"
#include "cri/service.h"

namespace berth::cri {

struct Service::RunState {
  std::shared_ptr<Sandbox> sb;
  const RuntimeConfig* runtime = nullptr;
  bool name_reserved = false;
  bool dirs_made = false;
  bool shm_mounted = false;
  std::optional<cni::NetNs> netns;
  bool network_attached = false;
  bool record_created = false;
  std::shared_ptr<runtime::Task> task;
};

namespace {

// makeSandboxName: <name>_<namespace>_<uid>_<attempt>.
std::string SandboxName(const v1::PodSandboxMetadata& m) {
  return fmt::format("{}_{}_{}_{}", m.name(), m.namespace_(), m.uid(), m.attempt());
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

// The resolv.conf of a pod: search, nameserver and options lines from dns_config, or the
// host's file when the config has none.
Result<std::string> ResolvConf(const v1::PodSandboxConfig& config) {
  const auto& dns = config.dns_config();
  if (dns.servers().empty() && dns.searches().empty() && dns.options().empty()) {
    return fs::ReadFile("/etc/resolv.conf");
  }
  std::string out;
  if (!dns.searches().empty()) {
    out += "search";
    for (const auto& s : dns.searches()) out += " " + s;
    out += "\n";
  }
  for (const auto& s : dns.servers()) out += "nameserver " + s + "\n";
  if (!dns.options().empty()) {
    out += "options";
    for (const auto& o : dns.options()) out += " " + o;
    out += "\n";
  }
  return out;
}

}  // namespace

Status Service::RunPodSandbox(const CallContext& cc, const v1::RunPodSandboxRequest& req,
                              v1::RunPodSandboxResponse* resp) {
  if (!req.config().has_metadata()) return Unknown("sandbox config must include metadata");
  RunState rs;
  rs.sb = std::make_shared<Sandbox>();
  rs.sb->meta.id = GenerateId();
  rs.sb->meta.name = SandboxName(req.config().metadata());
  rs.sb->meta.config = req.config();
  rs.sb->meta.runtime_handler = req.runtime_handler();
  Status st = RunSandboxSteps(cc, rs, resp);
  if (!st) {
    UndoRun(rs);
    return st;
  }
  return Ok();
}

Status Service::RunSandboxSteps(const CallContext& /*cc*/, RunState& rs,
                                v1::RunPodSandboxResponse* resp) {
  Sandbox& sb = *rs.sb;
  const std::string& id = sb.meta.id;
  const v1::PodSandboxConfig& config = sb.meta.config;
  auto entry = log::L().With("pod", sb.meta.name).With("sandbox", id);

  if (auto st = sandbox_names_.Reserve(sb.meta.name, id); !st) {
    return std::move(st).error().Wrap(
        fmt::format("failed to reserve sandbox name {:?}", sb.meta.name));
  }
  rs.name_reserved = true;

  // The sandbox image: berth's own pause when sandbox_image is "", else the configured image.
  oci::ImageConfig image_config;
  std::string parent;
  if (options_.config.sandbox_image.empty()) {
    BERTH_ASSIGN_OR_RETURN(parent, EnsurePauseSnapshot());
    image_config.entrypoint = {"/pause"};
    image_config.env = {std::string(oci::kDefaultPathEnv)};
    sb.image = "";
  } else {
    BERTH_ASSIGN_OR_RETURN(parent, EnsureSandboxImage(&sb.image, &image_config));
  }

  BERTH_ASSIGN_OR_RETURN(rs.runtime, RuntimeFor(sb.meta.runtime_handler));
  sb.runtime_type = rs.runtime->runtime_type;
  const auto& ns_opts = config.linux().security_context().namespace_options();
  const bool host_network = ns_opts.network() == v1::NODE;
  const bool host_ipc = ns_opts.ipc() == v1::NODE;

  // Files and shm.
  const std::string root = SandboxRootDir(id);
  const std::string state = SandboxStateDir(id);
  BERTH_TRY(fs::MkdirAll(root, 0755));
  rs.dirs_made = true;
  BERTH_TRY(fs::MkdirAll(state, 0755));
  {
    std::string hostname = config.hostname().empty() ? HostName() : config.hostname();
    BERTH_TRY(fs::ReplaceFile(root + "/hostname", hostname + "\n", 0644));
    BERTH_ASSIGN_OR_RETURN(std::string hosts, fs::ReadFile("/etc/hosts"));
    BERTH_TRY(fs::ReplaceFile(root + "/hosts", hosts, 0644));
    BERTH_ASSIGN_OR_RETURN(std::string resolv, ResolvConf(config));
    BERTH_TRY(fs::ReplaceFile(root + "/resolv.conf", resolv, 0644));
  }
  std::string shm = "/dev/shm";
  if (!host_ipc) {
    shm = state + "/shm";
    BERTH_TRY(fs::MkdirAll(shm, 0700));
    if (::mount("shm", shm.c_str(), "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV,
                "mode=1777,size=67108864") != 0) {
      return ErrnoError(errno, "failed to mount sandbox shm " + shm);
    }
    rs.shm_mounted = true;
  } else if (::access("/dev/shm", F_OK) != 0) {
    return ErrnoError(errno, "host /dev/shm");
  }

  // The pod's network namespace, then its CNI networks, set up on a thread of their own while
  // the sandbox container is created (runc create only joins the namespace; the pause process
  // starts once the network is up). Every return below waits for the setup first: the future
  // of std::async joins when destroyed, so UndoRun never races a running CNI ADD.
  std::future<Result<cni::SetupResult>> network;
  if (!host_network) {
    BERTH_ASSIGN_OR_RETURN(cni::NetNs ns, cni::NetNs::Create(NetNsDir()));
    rs.netns = ns;
    sb.meta.netns_path = ns.Path();
    rs.network_attached = true;  // Setup may attach some networks before failing: undo them
    network = std::async(std::launch::async, [cni = cni_.get(), pod = PodNetworkOf(sb.meta)] {
      return cni->Setup(pod);
    });
  }

  // The container record, its snapshot and the spec (the user is resolved in the snapshot).
  metadata::Container record;
  record.id = id;
  for (const auto& [k, v] : image_config.labels) record.labels[k] = v;
  for (const auto& [k, v] : config.labels()) record.labels[k] = v;
  record.labels["io.cri-containerd.kind"] = "sandbox";
  record.image = sb.image;
  record.runtime.name = rs.runtime->runtime_type;
  BERTH_ASSIGN_OR_RETURN(auto runtime_options, RuntimeOptions(*rs.runtime));
  if (runtime_options) {
    record.runtime.options = metadata::Any{runtime_options->type_url(), runtime_options->value()};
  }
  record.snapshotter = options_.config.snapshotter;
  record.snapshot_key = id;
  record.extensions[kSandboxMetadataExtension] =
      metadata::Any{kSandboxMetadataTypeUrl, EncodeSandboxMetadata(sb.meta)};
  const spec::Options spec_options = SpecOptions(*rs.runtime);
  oci::Spec spec;
  // The sandbox's rootfs is only read for a user to resolve (containerd mounts it for
  // WithUser alone; a pause image has no user).
  const auto& sc = config.linux().security_context();
  const bool needs_rootfs =
      !image_config.user.empty() || sc.has_run_as_user() || sc.has_run_as_group();
  BERTH_TRY(CreateRecord(std::move(record), parent, needs_rootfs,
                         [&](const std::string& rootfs, metadata::Container& r) -> Status {
                           spec::SandboxSpecInput in{
                               .id = id,
                               .config = config,
                               .image = image_config,
                               .netns_path = sb.meta.netns_path,
                               .resolv_conf_path = root + "/resolv.conf",
                               .shm_path = shm,
                               .rootfs = rootfs.empty() ? oci::RootFs() : oci::RootFs(rootfs)};
                           BERTH_ASSIGN_OR_RETURN(spec, spec::SandboxSpec(in, spec_options));
                           r.spec = metadata::Any{std::string(oci::kSpecTypeUrl), spec.dump()};
                           return Ok();
                         }));
  rs.record_created = true;
  BERTH_ASSIGN_OR_RETURN(auto stored, containers_meta_.Get(Ctx(), id));
  sb.created_at = UnixNanos(stored.created_at);

  // The task: null stdio, watched for its exit, started.
  BERTH_ASSIGN_OR_RETURN(auto mounts, SnapshotMounts(id));
  runtime::CreateOpts opts{.spec = spec.dump(), .rootfs = std::move(mounts)};
  opts.runtime =
      rs.runtime->runtime_path.empty() ? rs.runtime->runtime_type : rs.runtime->runtime_path;
  opts.runtime_options = runtime_options;
  auto task = options_.tasks->Create(Ctx(), id, std::move(opts));
  if (!task) return std::move(task).error().Wrap("failed to create containerd task");
  rs.task = *task;
  {
    std::lock_guard lock(sb.mu);
    sb.task = rs.task;
    sb.pid = rs.task->Pid();
  }
  WatchSandbox(rs.sb, rs.task);
  if (network.valid()) {
    auto setup = network.get();
    if (!setup) {
      return std::move(setup).error().Wrap(
          fmt::format("failed to setup network for sandbox {:?}", id));
    }
    sb.meta.ip = setup->ip;
    sb.meta.additional_ips = setup->additional_ips;
    sb.meta.cni_result = setup->ToJson().dump();
    // The record was made before the IP was known.
    stored.extensions[kSandboxMetadataExtension] =
        metadata::Any{kSandboxMetadataTypeUrl, EncodeSandboxMetadata(sb.meta)};
    BERTH_TRY(containers_meta_.Update(Ctx(), stored,
                                      {std::string("extensions.") + kSandboxMetadataExtension}));
  }
  if (auto started = rs.task->Start(""); !started) {
    return std::move(started).error().Wrap(
        fmt::format("failed to start sandbox container task {:?}", id));
  }
  {
    std::lock_guard lock(sb.mu);
    if (sb.state == SandboxState::kUnknown) sb.state = SandboxState::kReady;
  }
  sandboxes_.Add(rs.sb, id);
  resp->set_pod_sandbox_id(id);
  entry.With("ip", sb.meta.ip).Info("sandbox ready");
  return Ok();
}

void Service::UndoRun(RunState& rs) {
  Sandbox& sb = *rs.sb;
  const std::string& id = sb.meta.id;
  auto entry = log::L().With("sandbox", id);
  if (rs.task) {
    (void)rs.task->Kill("", SIGKILL, true);
    // The exit watcher deletes the task; wait for it briefly so the record can go.
    sb.stopped->WaitUntil(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (auto t = options_.tasks->Get(Ctx(), id); t) {
      if (auto d = options_.tasks->Delete(Ctx(), id); !d) {
        entry.WithError(d.error()).Warn("delete task of failed sandbox");
      }
    }
  }
  if (rs.record_created) {
    if (auto st = DeleteRecord(id); !st) entry.WithError(st.error()).Warn("delete sandbox record");
  }
  if (rs.network_attached) {
    if (auto st = cni_->Remove(PodNetworkOf(sb.meta)); !st) {
      entry.WithError(st.error()).Warn("teardown network of failed sandbox");
    }
  }
  if (rs.netns) {
    if (auto st = rs.netns->Remove(); !st) entry.WithError(st.error()).Warn("remove netns");
  }
  if (rs.shm_mounted) (void)mount::UnmountAll(SandboxStateDir(id) + "/shm");
  if (rs.dirs_made) {
    (void)fs::RemoveAll(SandboxRootDir(id));
    (void)fs::RemoveAll(SandboxStateDir(id));
  }
  if (rs.name_reserved) sandbox_names_.Release(sb.meta.name);
}

std::string Service::NetNsDir() const {
  if (options_.config.netns_mounts_under_state_dir) return options_.daemon_state + "/netns";
  return "/var/run/netns";
}

cni::PodNetwork Service::PodNetworkOf(const SandboxMetadata& meta) const {
  const auto& c = meta.config;
  cni::PodNetwork pod{.id = meta.id,
                      .netns = meta.netns_path,
                      .name = c.metadata().name(),
                      .ns = c.metadata().namespace_(),
                      .uid = c.metadata().uid()};
  for (const auto& pm : c.port_mappings()) {
    std::string proto = "tcp";
    if (pm.protocol() == v1::UDP) proto = "udp";
    if (pm.protocol() == v1::SCTP) proto = "sctp";
    pod.port_mappings.push_back({.protocol = proto,
                                 .host_port = pm.host_port(),
                                 .container_port = pm.container_port(),
                                 .host_ip = pm.host_ip()});
  }
  if (c.has_dns_config()) {
    const auto& d = c.dns_config();
    pod.dns = cni::Dns{.servers = {d.servers().begin(), d.servers().end()},
                       .searches = {d.searches().begin(), d.searches().end()},
                       .options = {d.options().begin(), d.options().end()}};
  }
  pod.annotations = {c.annotations().begin(), c.annotations().end()};
  return pod;
}

Result<const RuntimeConfig*> Service::RuntimeFor(const std::string& handler) const {
  const std::string name = handler.empty() ? options_.config.default_runtime_name : handler;
  auto it = options_.config.runtimes.find(name);
  if (it == options_.config.runtimes.end()) {
    return Unknown(
        fmt::format("failed to get sandbox runtime: no runtime for {:?} is configured", name));
  }
  return &it->second;
}

void Service::WatchSandbox(const std::shared_ptr<Sandbox>& sb,
                           const std::shared_ptr<runtime::Task>& t) {
  t->Wait("", [this, life = life_, sb, t](const Result<runtime::ExitStatus>&) {
    // On the runtime's io thread: hand over to the pool (the handling talks to the shim). A
    // lost shim is an exit too: the task is gone either way.
    PostIfAlive(life, this, [this, sb, t] { OnSandboxExit(sb, t); });
  });
}

void Service::OnSandboxExit(const std::shared_ptr<Sandbox>& sb,
                            const std::shared_ptr<runtime::Task>& t) {
  const std::string& id = sb->meta.id;
  if (auto d = options_.tasks->Delete(Ctx(), id); !d && !d.error().Is(Errc::kNotFound)) {
    log::L().With("sandbox", id).WithError(d.error()).Warn("delete sandbox task after exit");
  }
  std::lock_guard lock(sb->mu);
  if (sb->task == t) sb->task = nullptr;
  sb->state = SandboxState::kNotReady;
  sb->pid = 0;
  sb->stopped->Fire();
}

}  // namespace berth::cri
