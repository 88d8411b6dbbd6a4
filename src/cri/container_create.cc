// CreateContainer and StartContainer (containerd 1.6 container_create.go, container_start.go;
// reference/cri.md §6, §7): the container record with its snapshot and spec, its FIFOs and
// status file; at start, its log, its task in the pod's shim, its exit watcher.
#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "cri/persist.h"
#include "cri/service.h"
#include "runtime/binary.h"

namespace berth::cri {
namespace {

// makeContainerName: <name>_<pod name>_<pod namespace>_<pod uid>_<attempt>.
std::string ContainerName(const v1::ContainerMetadata& c, const v1::PodSandboxMetadata& s) {
  return fmt::format("{}_{}_{}_{}_{}", c.name(), s.name(), s.namespace_(), s.uid(), c.attempt());
}

// Go's filepath.Join of the sandbox log directory and the container's log path.
std::string JoinLogPath(const std::string& dir, const std::string& path) {
  if (dir.empty() || path.empty()) return "";
  std::string out = dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out + (path.starts_with('/') ? "" : "/") + path;
}

}  // namespace

Status Service::CreateContainer(const CallContext& /*cc*/, const v1::CreateContainerRequest& req,
                                v1::CreateContainerResponse* resp) {
  const v1::ContainerConfig& config = req.config();
  const v1::PodSandboxConfig& sandbox_config = req.sandbox_config();
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(req.pod_sandbox_id()));
  uint32_t sandbox_pid;
  std::string runtime_type;
  {
    std::lock_guard lock(sb->mu);
    if (sb->task == nullptr || sb->state != SandboxState::kReady) {
      return FailedPrecondition(fmt::format(
          "failed to get sandbox container task: sandbox {:?} is not running", sb->meta.id));
    }
    sandbox_pid = sb->pid;
  }
  if (!config.has_metadata()) return Unknown("container config must include metadata");
  BERTH_ASSIGN_OR_RETURN(const RuntimeConfig* rc, RuntimeFor(sb->meta.runtime_handler));

  auto c = std::make_shared<Container>();
  c->meta.id = GenerateId();
  c->meta.name = ContainerName(config.metadata(), sb->meta.config.metadata());
  c->meta.sandbox_id = sb->meta.id;
  c->meta.config = config;
  const std::string& id = c->meta.id;
  if (auto st = container_names_.Reserve(c->meta.name, id); !st) {
    return std::move(st).error().Wrap(
        fmt::format("failed to reserve container name {:?}", c->meta.name));
  }
  bool ok = false;
  bool record_created = false;
  struct Undo {
    std::function<void()> fn;
    ~Undo() { fn(); }
  } undo{[&] {
    if (ok) return;
    if (c->io) (void)c->io->Close();
    if (record_created) (void)DeleteRecord(id);
    (void)fs::RemoveAll(ContainerRootDir(id));
    (void)fs::RemoveAll(ContainerStateDir(id));
    container_names_.Release(c->meta.name);
  }};

  auto image = ResolveImage(config.image().image());
  if (!image) {
    return std::move(image).error().Wrap(
        fmt::format("failed to resolve image {:?}", config.image().image()));
  }
  c->meta.image_ref = image->id;
  c->meta.stop_signal = image->resolved.config.stop_signal;
  c->meta.log_path = JoinLogPath(sandbox_config.log_directory(), config.log_path());
  BERTH_ASSIGN_OR_RETURN(std::string parent, EnsureUnpacked(*image));

  const std::string root = ContainerRootDir(id);
  BERTH_TRY(fs::MkdirAll(root, 0755));
  BERTH_TRY(fs::MkdirAll(ContainerStateDir(id), 0755));

  const spec::Options spec_options = SpecOptions(*rc);
  auto volumes =
      spec::ImageVolumeMounts(options_.root, id, image->resolved.config, config, spec_options);

  // The pid namespace of a TARGET container (same pod, running).
  uint32_t target_pid = 0;
  if (config.linux().security_context().namespace_options().pid() == v1::TARGET) {
    const std::string& target = config.linux().security_context().namespace_options().target_id();
    BERTH_ASSIGN_OR_RETURN(auto tc, GetContainer(target));
    auto ts = tc->Status();
    if (tc->meta.sandbox_id != sb->meta.id || ts.State() != v1::CONTAINER_RUNNING) {
      return InvalidArgument(
          fmt::format("invalid target container {:?}: not running in the pod", target));
    }
    target_pid = ts.pid;
  }

  metadata::Container record;
  record.id = id;
  for (const auto& [k, v] : image->resolved.config.labels) record.labels[k] = v;
  for (const auto& [k, v] : config.labels()) record.labels[k] = v;
  record.labels["io.cri-containerd.kind"] = "container";
  const std::string image_name =
      image->repo_tags.empty() ? config.image().image() : image->repo_tags.front();
  record.image = image_name;
  record.runtime.name = sb->runtime_type;
  BERTH_ASSIGN_OR_RETURN(auto runtime_options, RuntimeOptions(*rc));
  if (runtime_options) {
    record.runtime.options = metadata::Any{runtime_options->type_url(), runtime_options->value()};
  }
  record.snapshotter = options_.config.snapshotter;
  record.snapshot_key = id;
  record.extensions[kContainerMetadataExtension] =
      metadata::Any{kContainerMetadataTypeUrl, EncodeContainerMetadata(c->meta)};

  const std::string sroot = SandboxRootDir(sb->meta.id);
  const auto& ns_opts = sb->meta.config.linux().security_context().namespace_options();
  BERTH_TRY(CreateRecord(
      std::move(record), parent, /*mount_rootfs=*/true,
      [&](const std::string& rootfs, metadata::Container& r) -> Status {
        // Image volumes start with the image's content at their path.
        for (const auto& v : volumes) {
          BERTH_TRY(fs::MkdirAll(v.host_path(), 0755));
          std::string src = rootfs + v.container_path();
          if (::access(src.c_str(), F_OK) == 0) {
            auto st = runtime::RunCommand({"/bin/cp", "-a", src + "/.", v.host_path()}, {}, "/", "",
                                          true);
            if (!st || st->status != 0) {
              return Unknown(fmt::format("failed to copy image volume {:?}: {}", v.container_path(),
                                         st ? st->out : st.error().ToString()));
            }
          }
        }
        spec::ContainerSpecInput in{.id = id,
                                    .sandbox_id = sb->meta.id,
                                    .sandbox_pid = sandbox_pid,
                                    .target_pid = target_pid,
                                    .container_name = config.metadata().name(),
                                    .image_name = image_name,
                                    .config = config,
                                    .sandbox_config = sb->meta.config,
                                    .image = image->resolved.config,
                                    .hostname_path = sroot + "/hostname",
                                    .hosts_path = sroot + "/hosts",
                                    .resolv_conf_path = sroot + "/resolv.conf",
                                    .shm_path = ns_opts.ipc() == v1::NODE
                                                    ? "/dev/shm"
                                                    : SandboxStateDir(sb->meta.id) + "/shm",
                                    .volume_mounts = volumes,
                                    .rootfs = rootfs};
        BERTH_ASSIGN_OR_RETURN(oci::Spec spec, spec::ContainerSpec(in, spec_options));
        r.spec = metadata::Any{std::string(oci::kSpecTypeUrl), spec.dump()};
        return Ok();
      }));
  record_created = true;

  BERTH_ASSIGN_OR_RETURN(
      io::ContainerIo cio,
      io::ContainerIo::Create(ContainerStateDir(id) + "/io", id, config.stdin(), config.tty()));
  c->io = std::make_shared<io::ContainerIo>(std::move(cio));
  c->status.created_at = UnixNanos(Now());
  BERTH_TRY(WriteContainerStatus(root, c->status));
  containers_.Add(c, id);
  ok = true;
  resp->set_container_id(id);
  return Ok();
}

Status Service::StartContainer(const CallContext& /*cc*/, const v1::StartContainerRequest& req) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  {
    std::lock_guard lock(c->mu);
    auto state = c->status.State();
    if (state != v1::CONTAINER_CREATED) {
      return Unknown(
          fmt::format("failed to set starting state for container {:?}: container is in "
                      "{} state",
                      c->meta.id, v1::ContainerState_Name(state)));
    }
    if (c->status.starting) return Unknown("container is already in starting state");
    if (c->status.removing) return Unknown("container is in removing state");
    c->status.starting = true;
  }
  Status st = DoStartContainer(c);
  std::lock_guard lock(c->mu);
  c->status.starting = false;
  if (!st) {
    // containerd: FinishedAt now, ExitCode 128, Reason StartError, Message the error.
    c->status.finished_at = UnixNanos(Now());
    c->status.exit_code = 128;
    c->status.reason = "StartError";
    c->status.message = st.error().ToString();
    (void)SaveStatus(*c);
    c->stopped->Fire();
  }
  return st;
}

Status Service::DoStartContainer(const std::shared_ptr<Container>& c) {
  const std::string& id = c->meta.id;
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(c->meta.sandbox_id));
  {
    std::lock_guard lock(sb->mu);
    if (sb->state != SandboxState::kReady) {
      return Unknown(fmt::format("sandbox container {:?} is not running", sb->meta.id));
    }
  }
  BERTH_ASSIGN_OR_RETURN(const RuntimeConfig* rc, RuntimeFor(sb->meta.runtime_handler));
  BERTH_ASSIGN_OR_RETURN(auto record, containers_meta_.Get(Ctx(), id));

  std::shared_ptr<io::LogFile> log;
  if (!c->meta.log_path.empty()) {
    auto slash = c->meta.log_path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      BERTH_TRY(fs::MkdirAll(c->meta.log_path.substr(0, slash), 0755));
    }
    auto opened = io::LogFile::Open(c->meta.log_path);
    if (!opened) {
      return std::move(opened).error().Wrap(
          fmt::format("failed to create and open log file {:?}", c->meta.log_path));
    }
    log = *opened;
  }
  BERTH_TRY(c->io->Start(io_, log, options_.config.max_container_log_line_size));
  {
    std::lock_guard lock(c->mu);
    c->log = log;
  }

  BERTH_ASSIGN_OR_RETURN(auto mounts, SnapshotMounts(id));
  const io::FifoSet& fifos = c->io->Fifos();
  runtime::CreateOpts opts{.spec = record.spec ? record.spec->value : std::string(),
                           .rootfs = std::move(mounts),
                           .stdin_path = fifos.stdin_path,
                           .stdout_path = fifos.stdout_path,
                           .stderr_path = fifos.stderr_path,
                           .terminal = fifos.terminal};
  opts.runtime = rc->runtime_path.empty() ? sb->runtime_type : rc->runtime_path;
  BERTH_ASSIGN_OR_RETURN(opts.runtime_options, RuntimeOptions(*rc));
  auto task = options_.tasks->Create(Ctx(), id, std::move(opts));
  if (!task) return std::move(task).error().Wrap("failed to create containerd task");
  {
    std::lock_guard lock(c->mu);
    c->task = *task;
  }
  WatchContainer(c, *task);
  auto started = (*task)->Start("");
  if (!started) {
    (void)(*task)->Kill("", SIGKILL, true);
    return std::move(started).error().Wrap(fmt::format("failed to start containerd task {:?}", id));
  }
  std::lock_guard lock(c->mu);
  if (c->status.finished_at == 0) {
    c->status.pid = *started;
    c->status.started_at = UnixNanos(Now());
    BERTH_TRY(SaveStatus(*c));
  }
  return Ok();
}

void Service::WatchContainer(const std::shared_ptr<Container>& c,
                             const std::shared_ptr<runtime::Task>& t) {
  t->Wait("", [this, life = life_, c, t](Result<runtime::ExitStatus> r) {
    uint32_t code = r ? r->status : 255;
    Timestamp at = r ? r->exited_at : Now();
    PostIfAlive(life, this, [this, c, t, code, at] { OnContainerExit(c, t, code, at); });
  });
}

void Service::OnContainerExit(const std::shared_ptr<Container>& c,
                              const std::shared_ptr<runtime::Task>& t, uint32_t exit_code,
                              Timestamp exited_at) {
  const std::string& id = c->meta.id;
  // Deleting the task first lets the shim flush the process's output into the FIFOs.
  if (auto d = options_.tasks->Delete(Ctx(), id); !d && !d.error().Is(Errc::kNotFound)) {
    log::L().With("container", id).WithError(d.error()).Warn("delete task after exit");
  }
  std::shared_ptr<io::ContainerIo> cio;
  {
    std::lock_guard lock(c->mu);
    cio = c->io;
  }
  if (cio) (void)cio->Close();
  std::lock_guard lock(c->mu);
  if (c->task == t) c->task = nullptr;
  c->log = nullptr;
  if (c->status.finished_at == 0) {  // the first exit wins
    c->status.pid = 0;
    c->status.finished_at = UnixNanos(exited_at) != 0 ? UnixNanos(exited_at) : UnixNanos(Now());
    c->status.exit_code = static_cast<int32_t>(exit_code);
    if (c->oom_killed) c->status.reason = "OOMKilled";
    if (auto st = SaveStatus(*c); !st) {
      log::L().With("container", id).WithError(st.error()).Warn("save container status");
    }
  }
  c->stopped->Fire();
}

Status Service::SaveStatus(const Container& c) {
  return WriteContainerStatus(ContainerRootDir(c.meta.id), c.status);
}

}  // namespace berth::cri
