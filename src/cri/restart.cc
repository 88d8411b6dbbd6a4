// Restart recovery (containerd 1.6 restart.go; reference/cri.md §16): rebuild the sandboxes and
// containers of a previous run from their records, extensions, status files and live tasks,
// before the first rpc is served; watch /tasks/oom for OOM kills.
#include <dirent.h>
#include <github.com/containerd/containerd/api/events/task.pb.h>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "cri/persist.h"
#include "cri/service.h"

namespace berth::cri {
namespace {

constexpr std::chrono::milliseconds kStateTimeout = std::chrono::seconds(2);

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(std::move(name));
  }
  ::closedir(d);
  return out;
}

}  // namespace

void Service::Recover() {
  if (options_.exchange != nullptr) {
    auto sub = options_.exchange->Subscribe(
        {fmt::format("topic==\"/tasks/oom\",namespace==\"{}\"", kNamespace)}, [this, life = life_] {
          PostIfAlive(life, this, [this] {
            if (!oom_events_) return;
            while (true) {
              auto next = oom_events_->TryNext();
              if (!next || !*next) return;
              containerd::events::TaskOOM ev;
              if (!(*next)->event.UnpackTo(&ev)) {
                // The Any of an event carries a bare type URL: unpack by hand.
                if (!ev.ParseFromString((*next)->event.value())) continue;
              }
              if (auto c = containers_.Get(ev.container_id(), "container"); c) {
                std::lock_guard lock((*c)->mu);
                (*c)->oom_killed = true;
              }
            }
          });
        });
    if (sub) {
      oom_events_ = std::move(sub).value();
    } else {
      log::L().WithError(sub.error()).Warn("subscribe to /tasks/oom");
    }
  }

  auto records = containers_meta_.List(Ctx(), {});
  if (!records) {
    log::L().WithError(records.error()).Error("cri recovery: list containers");
    return;
  }
  // Sandboxes first: containers need theirs.
  for (const auto& r : *records) {
    auto kind = r.labels.find("io.cri-containerd.kind");
    if (kind != r.labels.end() && kind->second == "sandbox") RecoverSandbox(r);
  }
  for (const auto& r : *records) {
    auto kind = r.labels.find("io.cri-containerd.kind");
    if (kind != r.labels.end() && kind->second == "container") RecoverContainer(r);
  }
  CleanupOrphanDirs();
  log::L()
      .With("sandboxes", sandboxes_.List().size())
      .With("containers", containers_.List().size())
      .Info("cri state recovered");
}

void Service::RecoverSandbox(const metadata::Container& record) {
  auto entry = log::L().With("sandbox", record.id);
  auto ext = record.extensions.find(kSandboxMetadataExtension);
  if (ext == record.extensions.end()) {
    entry.Warn("cri recovery: sandbox record without metadata, skipped");
    return;
  }
  auto meta = DecodeSandboxMetadata(ext->second.value);
  if (!meta) {
    entry.WithError(meta.error()).Warn("cri recovery: bad sandbox metadata, skipped");
    return;
  }
  auto sb = std::make_shared<Sandbox>();
  sb->meta = std::move(meta).value();
  sb->created_at = UnixNanos(record.created_at);
  sb->image = record.image;
  sb->runtime_type = record.runtime.name;
  sb->state = SandboxState::kNotReady;
  if (auto task = options_.tasks->Get(Ctx(), record.id); task) {
    auto st = (*task)->State("", kStateTimeout);
    if (st && (st->status == runtime::ProcessStatus::kRunning ||
               st->status == runtime::ProcessStatus::kPaused)) {
      sb->state = SandboxState::kReady;
      sb->pid = st->pid;
      sb->task = *task;
      WatchSandbox(sb, *task);
    } else {
      if (auto d = options_.tasks->Delete(Ctx(), record.id); !d) {
        entry.WithError(d.error()).Warn("cri recovery: delete stopped sandbox task");
      }
      sb->stopped->Fire();
    }
  } else {
    sb->stopped->Fire();
  }
  if (!sb->meta.netns_path.empty()) {
    auto closed = cni::NetNs::Load(sb->meta.netns_path).Closed();
    sb->netns_closed = !closed || *closed;
  }
  if (auto st = sandbox_names_.Reserve(sb->meta.name, sb->meta.id); !st) {
    entry.WithError(st.error()).Warn("cri recovery: sandbox name");
  }
  sandboxes_.Add(sb, sb->meta.id);
}

void Service::RecoverContainer(const metadata::Container& record) {
  auto entry = log::L().With("container", record.id);
  auto ext = record.extensions.find(kContainerMetadataExtension);
  if (ext == record.extensions.end()) {
    entry.Warn("cri recovery: container record without metadata, skipped");
    return;
  }
  auto meta = DecodeContainerMetadata(ext->second.value);
  if (!meta) {
    entry.WithError(meta.error()).Warn("cri recovery: bad container metadata, skipped");
    return;
  }
  auto c = std::make_shared<Container>();
  c->meta = std::move(meta).value();
  const std::string& id = c->meta.id;
  auto status = ReadContainerStatus(ContainerRootDir(id));
  if (status) {
    c->status = *status;
  } else {
    entry.WithError(status.error()).Warn("cri recovery: unreadable status, container unknown");
    c->status.created_at = UnixNanos(record.created_at);
    c->status.unknown = true;
  }
  auto task = options_.tasks->Get(Ctx(), id);
  auto fresh_fifos = [&] {
    auto cio = io::ContainerIo::Create(ContainerStateDir(id) + "/io", id, c->meta.config.stdin(),
                                       c->meta.config.tty());
    if (cio) {
      c->io = std::make_shared<io::ContainerIo>(std::move(cio).value());
    } else {
      entry.WithError(cio.error()).Warn("cri recovery: container fifos");
    }
  };
  if (task) {
    auto st = (*task)->State("", kStateTimeout);
    if (st && st->status == runtime::ProcessStatus::kCreated) {
      (void)options_.tasks->Delete(Ctx(), id);
      fresh_fifos();
    } else if (st && (st->status == runtime::ProcessStatus::kRunning ||
                      st->status == runtime::ProcessStatus::kPaused)) {
      // Running: reattach its FIFOs with a new logger on the stored log path.
      auto cio = io::ContainerIo::Reattach(io::FifoSet{.stdin_path = st->stdin_path,
                                                       .stdout_path = st->stdout_path,
                                                       .stderr_path = st->stderr_path,
                                                       .terminal = st->terminal});
      std::shared_ptr<io::LogFile> log;
      if (!c->meta.log_path.empty()) {
        if (auto l = io::LogFile::Open(c->meta.log_path); l) log = *l;
      }
      if (cio) {
        c->io = std::make_shared<io::ContainerIo>(std::move(cio).value());
        if (auto s = c->io->Start(io_, log, options_.config.max_container_log_line_size); !s) {
          entry.WithError(s.error()).Warn("cri recovery: reattach container io");
        }
        c->log = log;
      } else {
        entry.WithError(cio.error()).Warn("cri recovery: reattach container fifos");
      }
      c->task = *task;
      c->status.pid = st->pid;
      c->status.unknown = false;
      if (c->status.started_at == 0) c->status.started_at = UnixNanos(Now());
      WatchContainer(c, *task);
    } else {
      // Stopped while we were down: its exit is in the task.
      if (st) {
        c->status.finished_at = st->exited_at ? UnixNanos(*st->exited_at) : UnixNanos(Now());
        c->status.exit_code = static_cast<int32_t>(st->exit_status);
      }
      auto fifos = st ? io::FifoSet{.stdin_path = st->stdin_path,
                                    .stdout_path = st->stdout_path,
                                    .stderr_path = st->stderr_path,
                                    .terminal = st->terminal}
                      : io::FifoSet{};
      (void)options_.tasks->Delete(Ctx(), id);
      if (!fifos.stdout_path.empty()) {
        if (auto cio = io::ContainerIo::Reattach(fifos); cio) (void)cio->Close();
      }
      c->status.pid = 0;
      if (c->status.finished_at == 0) c->status.finished_at = UnixNanos(Now());
      c->stopped->Fire();
    }
  } else {
    auto state = c->status.State();
    if (state == v1::CONTAINER_CREATED) {
      fresh_fifos();
    } else if (state == v1::CONTAINER_RUNNING) {
      // Its task is gone and its exit with it.
      c->status.finished_at = UnixNanos(Now());
      c->status.exit_code = 255;
      c->status.reason = "Unknown";
      c->status.pid = 0;
      c->stopped->Fire();
    } else {
      c->stopped->Fire();
    }
  }
  if (!c->status.unknown) {
    if (auto s = SaveStatus(*c); !s) entry.WithError(s.error()).Warn("cri recovery: save status");
  }
  if (auto st = container_names_.Reserve(c->meta.name, id); !st) {
    entry.WithError(st.error()).Warn("cri recovery: container name");
  }
  containers_.Add(c, id);
}

void Service::CleanupOrphanDirs() {
  auto sweep = [&](const std::string& dir, bool sandboxes) {
    for (const auto& name : ListDir(dir)) {
      bool known = sandboxes ? sandboxes_.Get(name, "sandbox").has_value()
                             : containers_.Get(name, "container").has_value();
      if (known && (sandboxes ? sandboxes_.Resolve(name) : containers_.Resolve(name)) == name) {
        continue;
      }
      const std::string path = dir + "/" + name;
      (void)mount::UnmountAll(path + "/shm");
      if (auto st = fs::RemoveAll(path); !st) {
        log::L().WithError(st.error()).Warn("cri recovery: remove orphan directory " + path);
      }
    }
  };
  sweep(options_.root + "/sandboxes", true);
  sweep(options_.state + "/sandboxes", true);
  sweep(options_.root + "/containers", false);
  sweep(options_.state + "/containers", false);
}

}  // namespace berth::cri
