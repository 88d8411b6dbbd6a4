#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>

#include "common/version.h"  // generated
#include "services/plugins.h"

namespace berth::services {
namespace {

namespace api = containerd::services::version::v1;

class VersionService final : public api::Version::CallbackService {
 public:
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* rpc,
                                    const google::protobuf::Empty* /*req*/,
                                    api::VersionResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      resp->set_version(kVersion);
      resp->set_revision(kRevision);
      return Ok();
    });
  }
};

}  // namespace

void RegisterVersion(plugin::Registry& registry) {
  registry.Add({.type = plugin::kGrpc,
                .id = "version",
                .init = [](plugin::InitContext&) -> Result<plugin::Instance> {
                  return plugin::Instance::Of<grpc::Service>(std::make_shared<VersionService>());
                }});
}

}  // namespace berth::services
