// containerd.services.diff.v1.Diff over the configured differ ("walking").
#include <github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h>

#include <fmt/format.h>

#include "diff/diff.h"
#include "services/plugins.h"
#include "services/pool.h"

namespace berth::services {
namespace {

namespace api = containerd::services::diff::v1;

template <class Repeated>
std::vector<mount::Mount> FromProto(const Repeated& in) {
  std::vector<mount::Mount> out;
  for (const auto& m : in) {
    out.push_back({.type = m.type(),
                   .source = m.source(),
                   .target = m.target(),
                   .options = {m.options().begin(), m.options().end()}});
  }
  return out;
}

Result<Descriptor> FromProto(const containerd::types::Descriptor& in) {
  Descriptor d{
      .media_type = in.media_type(), .size = in.size(), .annotations = ToMap(in.annotations())};
  BERTH_ASSIGN_OR_RETURN(d.digest, Digest::Parse(in.digest()));
  return d;
}

void ToProto(const Descriptor& in, containerd::types::Descriptor* out) {
  out->set_media_type(in.media_type);
  out->set_digest(in.digest.String());
  out->set_size(in.size);
  out->mutable_annotations()->insert(in.annotations.begin(), in.annotations.end());
}

class DiffService final : public api::Diff::CallbackService {
 public:
  explicit DiffService(diff::Differ differ) : differ_(differ) {}

  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* rpc, const api::ApplyRequest* req,
                                  api::ApplyResponse* resp) override {
    auto ctx = NamespacedContextFrom(rpc);
    return OnPool(rpc, [this, ctx = std::move(ctx), req, resp]() -> Status {
      BERTH_TRY(ctx);
      if (differ_.applier == nullptr) return NotImplemented("no differ can apply layers");
      BERTH_ASSIGN_OR_RETURN(Descriptor desc, FromProto(req->diff()));
      BERTH_ASSIGN_OR_RETURN(Descriptor applied,
                             differ_.applier->Apply(*ctx, desc, FromProto(req->mounts())));
      ToProto(applied, resp->mutable_applied());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Diff(grpc::CallbackServerContext* rpc, const api::DiffRequest* req,
                                 api::DiffResponse* resp) override {
    auto ctx = NamespacedContextFrom(rpc);
    return OnPool(rpc, [this, ctx = std::move(ctx), req, resp]() -> Status {
      BERTH_TRY(ctx);
      if (differ_.comparer == nullptr) return NotImplemented("no differ can compute layers");
      BERTH_ASSIGN_OR_RETURN(
          Descriptor d,
          differ_.comparer->Compare(*ctx, FromProto(req->left()), FromProto(req->right()),
                                    {.media_type = req->media_type(),
                                     .ref = req->ref(),
                                     .labels = ToMap(req->labels())}));
      ToProto(d, resp->mutable_diff());
      return Ok();
    });
  }

 private:
  diff::Differ differ_;
};

}  // namespace

void RegisterDiff(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "diff-service",
                .requires_types = {plugin::kDiff},
                .config_defaults = "default = [\"walking\"]\n",
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  std::string name = "walking";
                  if (const auto* arr = ic.Config()["default"].as_array(); arr && !arr->empty()) {
                    name = (*arr)[0].value_or(name);
                  }
                  auto all = ic.Plugins().GetAll<diff::Differ>(plugin::kDiff);
                  auto it = all.find(name);
                  if (it == all.end()) {
                    return NotFound(fmt::format("differ {:?} is not loaded", name));
                  }
                  return plugin::Instance::Of<diff::Differ>(
                      std::make_shared<diff::Differ>(*it->second));
                }});
  registry.Add(
      {.type = plugin::kGrpc,
       .id = "diff",
       .requires_types = {plugin::kService},
       .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
         BERTH_ASSIGN_OR_RETURN(auto* differ, ic.GetSingle<diff::Differ>(plugin::kService));
         return plugin::Instance::Of<grpc::Service>(std::make_shared<DiffService>(*differ));
       }});
}

}  // namespace berth::services
