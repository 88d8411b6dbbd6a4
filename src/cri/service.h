#pragma once
// The CRI service (containerd 1.6 pkg/cri/server criService): runtime.v1's RuntimeService and
// ImageService over berth's domain layer — the metadata stores, the snapshotters, the content
// store, the task manager and the events exchange; no gRPC loopback to berthd itself. The gRPC
// adapter (grpc.cc) calls one method per rpc on the CRI pool; methods block. Methods are named
// after their rpcs (Get* for the *Status rpcs, RuntimeStatus for Status).
//
// Everything lives in containerd's `k8s.io` namespace, whatever the request metadata says.
// Directories: criRoot = <root>/io.containerd.grpc.v1.cri (sandboxes/<id>: hostname, hosts,
// resolv.conf; containers/<id>: status, volumes) and criState = <state>/io.containerd.grpc.v1.cri
// (sandboxes/<id>/shm, containers/<id>/io FIFOs).
#include <asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "content/content.h"
#include "cri/api/api.pb.h"
#include "cri/cni/cni.h"
#include "cri/cni/netns.h"
#include "cri/config.h"
#include "cri/images.h"
#include "cri/local_stores.h"
#include "cri/spec/spec.h"
#include "cri/store.h"
#include "cri/streaming/server.h"
#include "diff/diff.h"
#include "events/events.h"
#include "events/exchange.h"
#include "metadata/containers.h"
#include "metadata/images.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"
#include "metadata/snapshot_store.h"
#include "oci/spec.h"
#include "runtime/manager.h"

namespace berth::cri {

struct ServiceOptions {
  Config config;
  std::string root;           // criRoot
  std::string state;          // criState
  std::string daemon_root;    // berthd's root (ImageFsInfo's snapshotter dir)
  std::string daemon_state;   // berthd's state (netns dir with netns_mounts_under_state_dir)
  std::string pause_binary;   // berth-pause, for sandbox_image = ""
  std::string cni_cache_dir;  // libcni's cache ("/var/lib/cni")
  metadata::Db* db = nullptr;
  content::Store* content = nullptr;  // the namespaced (metadata) view
  metadata::Snapshotters* snapshotters = nullptr;
  diff::Applier* applier = nullptr;
  metadata::ImageStore* images = nullptr;
  metadata::LeaseStore* leases = nullptr;
  metadata::NamespaceStore* namespaces = nullptr;
  runtime::TaskManager* tasks = nullptr;
  events::Publisher* publisher = nullptr;
  events::Exchange* exchange = nullptr;  // /tasks/oom subscription; may be null
};

// What a call carries below the adapter: its deadline (none = far future).
struct CallContext {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

class Service {
 public:
  // Creates the directories, loads CNI, and recovers the sandboxes and containers of a
  // previous run (reference/cri.md §16) before returning.
  static Result<std::unique_ptr<Service>> Create(ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // ---- RuntimeService
  Status Version(const v1::VersionRequest& req, v1::VersionResponse* resp);
  Status RunPodSandbox(const CallContext& cc, const v1::RunPodSandboxRequest& req,
                       v1::RunPodSandboxResponse* resp);
  Status StopPodSandbox(const CallContext& cc, const v1::StopPodSandboxRequest& req);
  Status RemovePodSandbox(const CallContext& cc, const v1::RemovePodSandboxRequest& req);
  Status GetPodSandboxStatus(const v1::PodSandboxStatusRequest& req,
                             v1::PodSandboxStatusResponse* resp);
  Status ListPodSandbox(const v1::ListPodSandboxRequest& req, v1::ListPodSandboxResponse* resp);
  Status CreateContainer(const CallContext& cc, const v1::CreateContainerRequest& req,
                         v1::CreateContainerResponse* resp);
  Status StartContainer(const CallContext& cc, const v1::StartContainerRequest& req);
  Status StopContainer(const CallContext& cc, const v1::StopContainerRequest& req);
  Status RemoveContainer(const CallContext& cc, const v1::RemoveContainerRequest& req);
  Status ListContainers(const v1::ListContainersRequest& req, v1::ListContainersResponse* resp);
  Status GetContainerStatus(const v1::ContainerStatusRequest& req,
                            v1::ContainerStatusResponse* resp);
  Status UpdateContainerResources(const v1::UpdateContainerResourcesRequest& req);
  Status ReopenContainerLog(const v1::ReopenContainerLogRequest& req);
  Status ExecSync(const CallContext& cc, const v1::ExecSyncRequest& req,
                  v1::ExecSyncResponse* resp);
  // One-time URLs of the streaming server (container_stream.cc).
  Status Exec(const v1::ExecRequest& req, v1::ExecResponse* resp);
  Status Attach(const v1::AttachRequest& req, v1::AttachResponse* resp);
  Status PortForward(const v1::PortForwardRequest& req, v1::PortForwardResponse* resp);
  Status ContainerStats(const v1::ContainerStatsRequest& req, v1::ContainerStatsResponse* resp);
  Status ListContainerStats(const v1::ListContainerStatsRequest& req,
                            v1::ListContainerStatsResponse* resp);
  Status PodSandboxStats(const v1::PodSandboxStatsRequest& req, v1::PodSandboxStatsResponse* resp);
  Status ListPodSandboxStats(const v1::ListPodSandboxStatsRequest& req,
                             v1::ListPodSandboxStatsResponse* resp);
  Status UpdateRuntimeConfig(const v1::UpdateRuntimeConfigRequest& req);
  Status RuntimeStatus(const v1::StatusRequest& req, v1::StatusResponse* resp);

  // ---- ImageService
  Status ListImages(const v1::ListImagesRequest& req, v1::ListImagesResponse* resp);
  Status GetImageStatus(const v1::ImageStatusRequest& req, v1::ImageStatusResponse* resp);
  Status PullImage(const v1::PullImageRequest& req, v1::PullImageResponse* resp);
  Status RemoveImage(const v1::RemoveImageRequest& req);
  Status ImageFsInfo(const v1::ImageFsInfoRequest& req, v1::ImageFsInfoResponse* resp);

  const Config& GetConfig() const { return options_.config; }
  // The streaming server's port (0 when it does not run).
  uint16_t StreamPort() const { return stream_server_ ? stream_server_->Port() : 0; }

 private:
  explicit Service(ServiceOptions options);
  static Context Ctx() { return Context{.ns = kNamespace}; }

  // ---- sandboxes (sandbox_*.cc)
  struct RunState;
  Status RunSandboxSteps(const CallContext& cc, RunState& rs, v1::RunPodSandboxResponse* resp);
  void UndoRun(RunState& rs);
  Status StopSandbox(const CallContext& cc, const std::shared_ptr<Sandbox>& sb);
  Status TeardownNetwork(const std::shared_ptr<Sandbox>& sb);
  // The sandbox's task is gone: record the exit (exit handler).
  void OnSandboxExit(const std::shared_ptr<Sandbox>& sb, const std::shared_ptr<runtime::Task>& t);
  void WatchSandbox(const std::shared_ptr<Sandbox>& sb, const std::shared_ptr<runtime::Task>& t);
  Result<std::shared_ptr<Sandbox>> GetSandbox(const std::string& id) const;
  std::string SandboxRootDir(const std::string& id) const {
    return options_.root + "/sandboxes/" + id;
  }
  std::string SandboxStateDir(const std::string& id) const {
    return options_.state + "/sandboxes/" + id;
  }
  Result<std::string> EnsureSandboxImage(std::string* image_name, oci::ImageConfig* config);
  Result<std::string> EnsurePauseSnapshot();
  Result<const RuntimeConfig*> RuntimeFor(const std::string& handler) const;
  Result<std::optional<google::protobuf::Any>> RuntimeOptions(const RuntimeConfig& rc) const;
  std::string NetNsDir() const;
  cni::PodNetwork PodNetworkOf(const SandboxMetadata& meta) const;

  // ---- containers (container_*.cc)
  Status DoStartContainer(const std::shared_ptr<Container>& c);
  // Signal (timeout > 0) then SIGKILL; waits for the exit handler up to the deadline.
  Status DoStopContainer(const CallContext& cc, const std::shared_ptr<Container>& c,
                         int64_t timeout_seconds);
  Status DoRemoveContainer(const CallContext& cc, const std::shared_ptr<Container>& c);
  void OnContainerExit(const std::shared_ptr<Container>& c, const std::shared_ptr<runtime::Task>& t,
                       uint32_t exit_code, Timestamp exited_at);
  void WatchContainer(const std::shared_ptr<Container>& c, const std::shared_ptr<runtime::Task>& t);
  Result<std::shared_ptr<Container>> GetContainer(const std::string& id) const;
  std::string ContainerRootDir(const std::string& id) const {
    return options_.root + "/containers/" + id;
  }
  std::string ContainerStateDir(const std::string& id) const {
    return options_.state + "/containers/" + id;
  }
  Status SaveStatus(const Container& c);  // c.mu held
  void ToCriContainer(const Container& c, v1::Container* out) const;
  Result<oci::Spec> ContainerSpecOf(const std::string& id) const;
  void FillStats(const Container& c, const std::optional<google::protobuf::Any>& metrics,
                 v1::ContainerStats* out);
  Status CheckStreamable(const std::shared_ptr<Container>& c) const;

  // ---- streaming (container_stream.cc)
  struct ExecState;
  class StreamExec;
  class StreamAttach;
  class StreamRuntime;
  Status StartStreamServer();
  void StopStreamServer();
  void RunStreamExec(const std::shared_ptr<ExecState>& s);

  // ---- images (images.cc)
  Result<ImageView> ResolveImage(const std::string& ref);
  std::vector<ImageView> AllImages();
  // Pulls and unpacks `ref`, creates the ID and repo-digest records; returns the image ID.
  Result<std::string> PullRef(const std::string& ref, const v1::AuthConfig* auth);
  // Unpacks the image into the configured snapshotter if its top snapshot is missing; returns
  // the top snapshot (the parent of a container's snapshot).
  Result<std::string> EnsureUnpacked(const ImageView& image);

  // ---- recovery (restart.cc)
  void Recover();
  void RecoverSandbox(const metadata::Container& record);
  void RecoverContainer(const metadata::Container& record);
  void CleanupOrphanDirs();

  // ---- helpers
  spec::Options SpecOptions(const RuntimeConfig& rc) const;
  // Creates the container record under a temporary lease: prepares its snapshot from `parent`
  // on the configured snapshotter, calls `fill` with the snapshot mounted read-only when
  // `mount_rootfs` (to resolve users and copy image volumes while the spec is made; "" when
  // not), then stores the record (a GC root for its snapshot) and publishes /containers/create.
  // Undoes the snapshot on failure.
  using FillRecord = std::function<Status(const std::string& rootfs, metadata::Container& r)>;
  Status CreateRecord(metadata::Container record, const std::string& parent, bool mount_rootfs,
                      const FillRecord& fill);
  // Deletes the record and its snapshot (both may be gone already); /containers/delete.
  Status DeleteRecord(const std::string& id);
  Result<std::vector<mount::Mount>> SnapshotMounts(const std::string& id);
  template <class Fn>
  void Post(Fn fn) {
    asio::post(pool_, std::move(fn));
  }
  // For callbacks from other threads (task exits, events) that may come after this service is
  // gone (the runtime outlives it): runs fn on the pool only while the service is alive.
  struct Lifetime {
    std::mutex mu;
    bool alive = true;
  };
  template <class Fn>
  static void PostIfAlive(const std::shared_ptr<Lifetime>& life, Service* self, Fn fn) {
    std::lock_guard lock(life->mu);
    if (life->alive) self->Post(std::move(fn));
  }
  void Publish(std::string_view topic, const google::protobuf::Message& event);

  ServiceOptions options_;
  std::shared_ptr<Lifetime> life_ = std::make_shared<Lifetime>();
  spec::Host host_;
  metadata::ContainerStore containers_meta_;
  LocalStores stores_;
  std::unique_ptr<cni::Cni> cni_;
  std::unique_ptr<ImageCache> image_cache_;

  Store<Sandbox> sandboxes_;
  Store<Container> containers_;
  NameIndex sandbox_names_;
  NameIndex container_names_;

  // Container stdio copies run here (one thread for every container).
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> io_work_;
  std::jthread io_thread_;
  // Exit handling and other deferred work.
  asio::thread_pool pool_{2};

  std::shared_ptr<streaming::Runtime> stream_runtime_;
  std::unique_ptr<streaming::Server> stream_server_;  // lives on io_

  std::unique_ptr<events::Subscription> oom_events_;
  std::mutex pause_mu_;
  std::string pause_key_;  // the berth-pause snapshot, once its binary was hashed
  std::mutex fs_usage_mu_;
  std::pair<int64_t, int64_t> fs_usage_{0, 0};  // bytes, inodes of the snapshotter (ImageFsInfo)
  std::chrono::steady_clock::time_point fs_usage_at_{};
  std::mutex stats_mu_;
  std::map<std::string, std::pair<uint64_t, int64_t>> last_cpu_;  // id -> (usage ns, at ns)
};

}  // namespace berth::cri
