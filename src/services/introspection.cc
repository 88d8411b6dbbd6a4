#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>

#include <openssl/rand.h>

#include <fmt/format.h>

#include "common/filters.h"
#include "common/fs.h"
#include "services/plugins.h"

namespace berth::services {
namespace {

namespace api = containerd::services::introspection::v1;

// The server's identity: a random UUID made once and kept in <root>/<plugin uri>/uuid.
Result<std::string> LoadOrCreateUuid(const std::string& dir) {
  std::string path = dir + "/uuid";
  auto existing = fs::ReadFile(path);
  if (existing && !existing->empty()) {
    std::string u = *existing;
    while (!u.empty() && (u.back() == '\n' || u.back() == ' ')) u.pop_back();
    if (u.size() == 36) return u;
  }
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    return Unknown("generate server uuid: openssl RAND_bytes failed");
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  std::string u = fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:"
      "02x}"
      "{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
  BERTH_TRY(fs::MkdirAll(dir, 0711));
  BERTH_TRY(fs::WriteFileAtomic(path, u, 0644));
  return u;
}

class IntrospectionService final : public api::Introspection::CallbackService {
 public:
  IntrospectionService(const plugin::Set& plugins, std::string uuid)
      : plugins_(plugins), uuid_(std::move(uuid)) {}

  grpc::ServerUnaryReactor* Plugins(grpc::CallbackServerContext* rpc,
                                    const api::PluginsRequest* req,
                                    api::PluginsResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_TRY(ContextFrom(rpc));
      std::vector<std::string> filter_strings(req->filters().begin(), req->filters().end());
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
      for (const auto& p : plugins_.All()) {
        const plugin::Registration& r = *p->registration;
        auto adaptor = [&](const std::vector<std::string>& path) -> std::optional<std::string> {
          if (path.size() == 1 && path[0] == "type") return r.type;
          if (path.size() == 1 && path[0] == "id") return r.id;
          return std::nullopt;
        };
        if (!filter.Match(adaptor)) continue;
        auto* out = resp->add_plugins();
        out->set_type(r.type);
        out->set_id(r.id);
        for (const auto& t : r.requires_types) out->add_requires_types(t);
        for (const auto& pl : p->platforms) {
          auto* o = out->add_platforms();
          o->set_os(pl.os);
          o->set_architecture(pl.architecture);
          o->set_variant(pl.variant);
        }
        out->mutable_exports()->insert(p->exports.begin(), p->exports.end());
        for (const auto& c : p->capabilities) out->add_capabilities(c);
        if (p->error) {
          auto* st = out->mutable_init_err();
          st->set_code(ErrcToGrpcCode(p->error->Code()));
          st->set_message(p->error->ToString());
        }
      }
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Server(grpc::CallbackServerContext* rpc,
                                   const google::protobuf::Empty* /*req*/,
                                   api::ServerResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_TRY(ContextFrom(rpc));
      resp->set_uuid(uuid_);
      return Ok();
    });
  }

 private:
  const plugin::Set& plugins_;
  std::string uuid_;
};

}  // namespace

void RegisterIntrospection(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "introspection-service",
                .requires_types = {"*"},
                .init = [](plugin::InitContext&) -> Result<plugin::Instance> {
                  return plugin::Instance::Of<int>(std::make_shared<int>(0));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "introspection",
                .requires_types = {"*"},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(std::string uuid, LoadOrCreateUuid(ic.Root()));
                  return plugin::Instance::Of<grpc::Service>(
                      std::make_shared<IntrospectionService>(ic.Plugins(), uuid));
                }});
}

void RegisterHealth(plugin::Registry& registry) {
  // grpc.health.v1.Health itself comes from gRPC's default health service (the server enables
  // it); this entry makes it visible in introspection under containerd's id.
  registry.Add({.type = plugin::kGrpc,
                .id = "healthcheck",
                .init = [](plugin::InitContext&) -> Result<plugin::Instance> {
                  return plugin::Instance::Of<int>(std::make_shared<int>(0));
                }});
}

}  // namespace berth::services
