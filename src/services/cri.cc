// runtime.v1.RuntimeService and runtime.v1.ImageService over cri::Service: the gRPC edge of the
// CRI plugin (io.containerd.grpc.v1.cri), served on berthd's main socket. Every rpc runs on the
// CRI's own pool (its calls block on shims, CNI plugins and registries for long, and must not
// starve the other services' pool); errors map to gRPC codes here.
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <limits.h>
#include <unistd.h>

#include "common/log.h"
#include "cri/api/api.grpc.pb.h"
#include "cri/service.h"
#include "metadata/snapshot_store.h"
#include "services/plugins.h"
#include "services/utf8_guard.h"

namespace berth::services {
namespace {

namespace v1 = ::runtime::v1;

// Calls the CRI's service methods on its pool with the call's deadline.
class CriPool {
 public:
  explicit CriPool(std::shared_ptr<cri::Service> svc) : svc_(std::move(svc)) {}
  ~CriPool() { pool_.join(); }

  cri::Service& Svc() { return *svc_; }

  template <class Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* rpc, Fn fn) {
    auto* reactor = rpc->DefaultReactor();
    if (auto bad = InvalidUtf8Error(rpc)) {
      reactor->Finish(ToGrpc(*bad));
      return reactor;
    }
    cri::CallContext cc;
    auto deadline = rpc->deadline();
    if (deadline < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
      cc.deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        deadline - std::chrono::system_clock::now());
    }
    asio::post(pool_,
               [reactor, fn = std::move(fn), cc]() mutable { reactor->Finish(ToGrpc(fn(cc))); });
    return reactor;
  }

 private:
  std::shared_ptr<cri::Service> svc_;
  asio::thread_pool pool_{8};
};

grpc::ServerUnaryReactor* NotImplementedRpc(grpc::CallbackServerContext* rpc, const char* name) {
  auto* reactor = rpc->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               std::string("method ") + name + " not implemented"));
  return reactor;
}

class RuntimeService final : public v1::RuntimeService::CallbackService {
 public:
  explicit RuntimeService(std::shared_ptr<CriPool> p) : p_(std::move(p)) {}

  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* rpc, const v1::VersionRequest* req,
                                    v1::VersionResponse* resp) override {
    return p_->Run(
        rpc, [this, req, resp](const cri::CallContext&) { return p_->Svc().Version(*req, resp); });
  }
  grpc::ServerUnaryReactor* RunPodSandbox(grpc::CallbackServerContext* rpc,
                                          const v1::RunPodSandboxRequest* req,
                                          v1::RunPodSandboxResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext& cc) {
      return p_->Svc().RunPodSandbox(cc, *req, resp);
    });
  }
  grpc::ServerUnaryReactor* StopPodSandbox(grpc::CallbackServerContext* rpc,
                                           const v1::StopPodSandboxRequest* req,
                                           v1::StopPodSandboxResponse*) override {
    return p_->Run(rpc, [this, req](const cri::CallContext& cc) {
      return p_->Svc().StopPodSandbox(cc, *req);
    });
  }
  grpc::ServerUnaryReactor* RemovePodSandbox(grpc::CallbackServerContext* rpc,
                                             const v1::RemovePodSandboxRequest* req,
                                             v1::RemovePodSandboxResponse*) override {
    return p_->Run(rpc, [this, req](const cri::CallContext& cc) {
      return p_->Svc().RemovePodSandbox(cc, *req);
    });
  }
  grpc::ServerUnaryReactor* PodSandboxStatus(grpc::CallbackServerContext* rpc,
                                             const v1::PodSandboxStatusRequest* req,
                                             v1::PodSandboxStatusResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().GetPodSandboxStatus(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* ListPodSandbox(grpc::CallbackServerContext* rpc,
                                           const v1::ListPodSandboxRequest* req,
                                           v1::ListPodSandboxResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ListPodSandbox(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* CreateContainer(grpc::CallbackServerContext* rpc,
                                            const v1::CreateContainerRequest* req,
                                            v1::CreateContainerResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext& cc) {
      return p_->Svc().CreateContainer(cc, *req, resp);
    });
  }
  grpc::ServerUnaryReactor* StartContainer(grpc::CallbackServerContext* rpc,
                                           const v1::StartContainerRequest* req,
                                           v1::StartContainerResponse*) override {
    return p_->Run(rpc, [this, req](const cri::CallContext& cc) {
      return p_->Svc().StartContainer(cc, *req);
    });
  }
  grpc::ServerUnaryReactor* StopContainer(grpc::CallbackServerContext* rpc,
                                          const v1::StopContainerRequest* req,
                                          v1::StopContainerResponse*) override {
    return p_->Run(
        rpc, [this, req](const cri::CallContext& cc) { return p_->Svc().StopContainer(cc, *req); });
  }
  grpc::ServerUnaryReactor* RemoveContainer(grpc::CallbackServerContext* rpc,
                                            const v1::RemoveContainerRequest* req,
                                            v1::RemoveContainerResponse*) override {
    return p_->Run(rpc, [this, req](const cri::CallContext& cc) {
      return p_->Svc().RemoveContainer(cc, *req);
    });
  }
  grpc::ServerUnaryReactor* ListContainers(grpc::CallbackServerContext* rpc,
                                           const v1::ListContainersRequest* req,
                                           v1::ListContainersResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ListContainers(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* ContainerStatus(grpc::CallbackServerContext* rpc,
                                            const v1::ContainerStatusRequest* req,
                                            v1::ContainerStatusResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().GetContainerStatus(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* UpdateContainerResources(
      grpc::CallbackServerContext* rpc, const v1::UpdateContainerResourcesRequest* req,
      v1::UpdateContainerResourcesResponse*) override {
    return p_->Run(rpc, [this, req](const cri::CallContext&) {
      return p_->Svc().UpdateContainerResources(*req);
    });
  }
  grpc::ServerUnaryReactor* ReopenContainerLog(grpc::CallbackServerContext* rpc,
                                               const v1::ReopenContainerLogRequest* req,
                                               v1::ReopenContainerLogResponse*) override {
    return p_->Run(
        rpc, [this, req](const cri::CallContext&) { return p_->Svc().ReopenContainerLog(*req); });
  }
  grpc::ServerUnaryReactor* ExecSync(grpc::CallbackServerContext* rpc,
                                     const v1::ExecSyncRequest* req,
                                     v1::ExecSyncResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext& cc) {
      return p_->Svc().ExecSync(cc, *req, resp);
    });
  }
  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* rpc, const v1::ExecRequest* req,
                                 v1::ExecResponse* resp) override {
    return p_->Run(
        rpc, [this, req, resp](const cri::CallContext&) { return p_->Svc().Exec(*req, resp); });
  }
  grpc::ServerUnaryReactor* Attach(grpc::CallbackServerContext* rpc, const v1::AttachRequest* req,
                                   v1::AttachResponse* resp) override {
    return p_->Run(
        rpc, [this, req, resp](const cri::CallContext&) { return p_->Svc().Attach(*req, resp); });
  }
  grpc::ServerUnaryReactor* PortForward(grpc::CallbackServerContext* rpc,
                                        const v1::PortForwardRequest* req,
                                        v1::PortForwardResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().PortForward(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* ContainerStats(grpc::CallbackServerContext* rpc,
                                           const v1::ContainerStatsRequest* req,
                                           v1::ContainerStatsResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ContainerStats(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* ListContainerStats(grpc::CallbackServerContext* rpc,
                                               const v1::ListContainerStatsRequest* req,
                                               v1::ListContainerStatsResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ListContainerStats(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* PodSandboxStats(grpc::CallbackServerContext* rpc,
                                            const v1::PodSandboxStatsRequest* req,
                                            v1::PodSandboxStatsResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().PodSandboxStats(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* ListPodSandboxStats(grpc::CallbackServerContext* rpc,
                                                const v1::ListPodSandboxStatsRequest* req,
                                                v1::ListPodSandboxStatsResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ListPodSandboxStats(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* UpdateRuntimeConfig(grpc::CallbackServerContext* rpc,
                                                const v1::UpdateRuntimeConfigRequest* req,
                                                v1::UpdateRuntimeConfigResponse*) override {
    return p_->Run(
        rpc, [this, req](const cri::CallContext&) { return p_->Svc().UpdateRuntimeConfig(*req); });
  }
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* rpc, const v1::StatusRequest* req,
                                   v1::StatusResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().RuntimeStatus(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* CheckpointContainer(grpc::CallbackServerContext* rpc,
                                                const v1::CheckpointContainerRequest*,
                                                v1::CheckpointContainerResponse*) override {
    return NotImplementedRpc(rpc, "CheckpointContainer");
  }
  grpc::ServerWriteReactor<v1::ContainerEventResponse>* GetContainerEvents(
      grpc::CallbackServerContext*, const v1::GetEventsRequest*) override {
    class Unimplemented final : public grpc::ServerWriteReactor<v1::ContainerEventResponse> {
     public:
      Unimplemented() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "method GetContainerEvents not implemented"));
      }
      void OnDone() override { delete this; }
    };
    return new Unimplemented();
  }

 private:
  std::shared_ptr<CriPool> p_;
};

class ImageService final : public v1::ImageService::CallbackService {
 public:
  explicit ImageService(std::shared_ptr<CriPool> p) : p_(std::move(p)) {}

  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* rpc,
                                       const v1::ListImagesRequest* req,
                                       v1::ListImagesResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ListImages(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* ImageStatus(grpc::CallbackServerContext* rpc,
                                        const v1::ImageStatusRequest* req,
                                        v1::ImageStatusResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().GetImageStatus(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* rpc,
                                      const v1::PullImageRequest* req,
                                      v1::PullImageResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().PullImage(*req, resp);
    });
  }
  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* rpc,
                                        const v1::RemoveImageRequest* req,
                                        v1::RemoveImageResponse*) override {
    return p_->Run(rpc,
                   [this, req](const cri::CallContext&) { return p_->Svc().RemoveImage(*req); });
  }
  grpc::ServerUnaryReactor* ImageFsInfo(grpc::CallbackServerContext* rpc,
                                        const v1::ImageFsInfoRequest* req,
                                        v1::ImageFsInfoResponse* resp) override {
    return p_->Run(rpc, [this, req, resp](const cri::CallContext&) {
      return p_->Svc().ImageFsInfo(*req, resp);
    });
  }

 private:
  std::shared_ptr<CriPool> p_;
};

std::string DaemonDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

}  // namespace

void RegisterCri(plugin::Registry& registry) {
  registry.Add(
      {.type = plugin::kGrpc,
       .id = cri::kPluginId,
       .requires_types = {plugin::kEvent, plugin::kService, plugin::kRuntimeV2, plugin::kMetadata},
       .config_defaults = cri::Config::DefaultToml(),
       .checks_own_config = true,
       .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
         std::vector<std::string> warnings;
         BERTH_ASSIGN_OR_RETURN(cri::Config config, cri::Config::FromToml(ic.Config(), &warnings));
         for (const auto& w : warnings) log::L().With("plugin", "cri").Warn(w);
         cri::ServiceOptions o{.config = std::move(config),
                               .root = ic.Root(),
                               .state = ic.State(),
                               .daemon_root = ic.Options().root,
                               .daemon_state = ic.Options().state,
                               .pause_binary = DaemonDir() + "/berth-pause"};
         o.cni_cache_dir = o.config.cni_cache_dir;
         BERTH_ASSIGN_OR_RETURN(o.db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
         BERTH_ASSIGN_OR_RETURN(o.content, ic.GetSingle<content::Store>(plugin::kService));
         BERTH_ASSIGN_OR_RETURN(o.snapshotters,
                                ic.GetSingle<metadata::Snapshotters>(plugin::kService));
         BERTH_ASSIGN_OR_RETURN(auto* differ, ic.GetSingle<diff::Differ>(plugin::kService));
         o.applier = differ->applier;
         BERTH_ASSIGN_OR_RETURN(o.images, ic.GetSingle<metadata::ImageStore>(plugin::kService));
         BERTH_ASSIGN_OR_RETURN(o.leases, ic.GetSingle<metadata::LeaseStore>(plugin::kService));
         BERTH_ASSIGN_OR_RETURN(o.namespaces,
                                ic.GetSingle<metadata::NamespaceStore>(plugin::kService));
         BERTH_ASSIGN_OR_RETURN(o.tasks, ic.GetSingle<runtime::TaskManager>(plugin::kRuntimeV2));
         if (auto ex = ic.GetSingle<events::Exchange>(plugin::kEvent); ex) {
           o.exchange = *ex;
           o.publisher = *ex;
         }
         BERTH_ASSIGN_OR_RETURN(auto svc, cri::Service::Create(std::move(o)));
         auto pool = std::make_shared<CriPool>(std::shared_ptr<cri::Service>(std::move(svc)));
         auto set = std::make_shared<GrpcServices>();
         set->services.push_back(std::make_shared<RuntimeService>(pool));
         set->services.push_back(std::make_shared<ImageService>(pool));
         return plugin::Instance::Of<GrpcServices>(std::move(set));
       }});
}

}  // namespace berth::services
