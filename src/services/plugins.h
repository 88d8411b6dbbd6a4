#pragma once
// Registration of the gRPC services (type io.containerd.grpc.v1) and the local services they
// wrap (io.containerd.service.v1). Instances of io.containerd.grpc.v1 are grpc::Service objects
// that server/ adds to the gRPC server.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>

#include "plugin/plugin.h"
#include "services/grpc_util.h"

namespace berth::services {

void RegisterEvents(plugin::Registry& registry);
void RegisterVersion(plugin::Registry& registry);
void RegisterNamespaces(plugin::Registry& registry);
void RegisterIntrospection(plugin::Registry& registry);
void RegisterHealth(plugin::Registry& registry);
void RegisterContent(plugin::Registry& registry);
void RegisterImages(plugin::Registry& registry);
void RegisterContainers(plugin::Registry& registry);
void RegisterLeases(plugin::Registry& registry);
void RegisterSnapshots(plugin::Registry& registry);
void RegisterDiff(plugin::Registry& registry);
void RegisterTasks(plugin::Registry& registry);
void RegisterCri(plugin::Registry& registry);

// The instance of a gRPC plugin that serves more than one service (the CRI plugin serves
// runtime.v1.RuntimeService and runtime.v1.ImageService); server/ registers each of them.
struct GrpcServices {
  std::vector<std::shared_ptr<grpc::Service>> services;
};

inline void RegisterAll(plugin::Registry& registry) {
  RegisterEvents(registry);
  RegisterNamespaces(registry);
  RegisterContent(registry);
  RegisterImages(registry);
  RegisterContainers(registry);
  RegisterLeases(registry);
  RegisterSnapshots(registry);
  RegisterDiff(registry);
  RegisterTasks(registry);
  RegisterCri(registry);
  RegisterIntrospection(registry);
  RegisterVersion(registry);
  RegisterHealth(registry);
}

}  // namespace berth::services
