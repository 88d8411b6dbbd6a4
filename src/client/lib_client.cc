// berth::Client: connection, namespaces, version, leases and events.
#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <google/protobuf/util/json_util.h>

#include <mutex>

#include <fmt/format.h>

#include "client/lib_internal.h"
#include "client/unpack.h"
#include "common/timeutil.h"
#include "events/types.h"

namespace berth {
namespace {

namespace events_api = containerd::services::events::v1;
namespace introspection_api = containerd::services::introspection::v1;
namespace leases_api = containerd::services::leases::v1;
namespace namespaces_api = containerd::services::namespaces::v1;
namespace version_api = containerd::services::version::v1;

Lease FromProtoLease(const leases_api::Lease& l) {
  Lease out;
  out.id = l.id();
  out.created_at = detail::FromProto(l.created_at());
  out.labels = {l.labels().begin(), l.labels().end()};
  return out;
}

}  // namespace

namespace detail {

Result<images::Platform> ParsePlatformText(const std::string& text) {
  if (text.empty()) return images::DefaultPlatform();
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.push_back(text.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() > 3 || parts[0].empty() || (parts.size() > 1 && parts[1].empty())) {
    return InvalidArgument(fmt::format("platform {:?}: expected os/arch[/variant]", text));
  }
  if (parts.size() == 1) {  // platforms.Parse: a lone architecture means the host's os
    return images::NormalizePlatform({images::DefaultPlatform().os, parts[0], ""});
  }
  return images::NormalizePlatform({parts[0], parts[1], parts.size() == 3 ? parts[2] : ""});
}

images::PlatformMatcher MatcherFor(const std::string& platform) {
  auto p = ParsePlatformText(platform);
  return images::PlatformMatcher::Only(p ? *p : images::DefaultPlatform());
}

std::unique_ptr<grpc::ClientContext> LongContext(const client::Session& session) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", session.Namespace());
  if (!session.Lease().empty()) ctx->AddMetadata("containerd-lease", session.Lease());
  return ctx;
}

}  // namespace detail

Result<Client> Client::Connect(const std::string& address, ClientOptions options) {
  std::string path = address;
  if (path.starts_with("unix://")) path = path.substr(7);
  if (path.empty()) return InvalidArgument("connect: empty berthd address");
  if (options.default_namespace.empty()) {
    return InvalidArgument("connect: the default namespace must not be empty");
  }
  BERTH_ASSIGN_OR_RETURN(auto channel, client::Dial(path, options.connect_timeout));
  return Client(std::make_shared<const detail::ClientState>(detail::ClientState{
      client::Session(std::move(channel), options.default_namespace, options.timeout)}));
}

Client Client::WithNamespace(std::string ns) const {
  return Client(detail::WithSession(state_->session.WithNamespace(std::move(ns))));
}

Client Client::WithLease(std::string id) const {
  return Client(detail::WithSession(state_->session.WithLease(std::move(id))));
}

const std::string& Client::Namespace() const { return state_->session.Namespace(); }
const std::string& Client::LeaseId() const { return state_->session.Lease(); }

Result<VersionInfo> Client::Version() const {
  auto stub = version_api::Version::NewStub(state_->session.Channel());
  google::protobuf::Empty req;
  version_api::VersionResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = stub->Version(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return VersionInfo{resp.version(), resp.revision()};
}

Result<ServerInfo> Client::Server() const {
  auto stub = introspection_api::Introspection::NewStub(state_->session.Channel());
  google::protobuf::Empty req;
  introspection_api::ServerResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = stub->Server(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return ServerInfo{resp.uuid()};
}

Result<std::vector<PluginInfo>> Client::Plugins(const std::vector<std::string>& filters) const {
  auto stub = introspection_api::Introspection::NewStub(state_->session.Channel());
  introspection_api::PluginsRequest req;
  for (const auto& f : filters) req.add_filters(f);
  introspection_api::PluginsResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = stub->Plugins(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  std::vector<PluginInfo> out;
  for (const auto& p : resp.plugins()) {
    PluginInfo info;
    info.type = p.type();
    info.id = p.id();
    info.requires_types.assign(p.requires_types().begin(), p.requires_types().end());
    for (const auto& pf : p.platforms()) {
      std::string text = pf.os() + "/" + pf.architecture();
      if (!pf.variant().empty()) text += "/" + pf.variant();
      info.platforms.push_back(std::move(text));
    }
    info.exports = {p.exports().begin(), p.exports().end()};
    info.capabilities.assign(p.capabilities().begin(), p.capabilities().end());
    if (p.has_init_err())
      info.init_error = PluginInfo::InitError{p.init_err().code(), p.init_err().message()};
    out.push_back(std::move(info));
  }
  return out;
}

// ---- Namespaces ----
// The daemon's errors as they come, as the Go client's namespace store returns them.

Status Client::CreateNamespace(const std::string& name,
                               const std::map<std::string, std::string>& labels) const {
  namespaces_api::CreateNamespaceRequest req;
  req.mutable_namespace_()->set_name(name);
  for (const auto& [k, v] : labels) (*req.mutable_namespace_()->mutable_labels())[k] = v;
  namespaces_api::CreateNamespaceResponse resp;
  auto ctx = state_->session.Context();
  auto stub = namespaces_api::Namespaces::NewStub(state_->session.Channel());
  if (auto st = stub->Create(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return Ok();
}

Result<std::vector<NamespaceInfo>> Client::Namespaces() const {
  namespaces_api::ListNamespacesRequest req;
  namespaces_api::ListNamespacesResponse resp;
  auto ctx = state_->session.Context();
  auto stub = namespaces_api::Namespaces::NewStub(state_->session.Channel());
  if (auto st = stub->List(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  std::vector<NamespaceInfo> out;
  for (const auto& ns : resp.namespaces()) {
    out.push_back({ns.name(), {ns.labels().begin(), ns.labels().end()}});
  }
  return out;
}

Status Client::SetNamespaceLabel(const std::string& name, const std::string& key,
                                 const std::string& value) const {
  namespaces_api::UpdateNamespaceRequest req;
  req.mutable_namespace_()->set_name(name);
  (*req.mutable_namespace_()->mutable_labels())[key] = value;
  req.mutable_update_mask()->add_paths("labels." + key);
  namespaces_api::UpdateNamespaceResponse resp;
  auto ctx = state_->session.Context();
  auto stub = namespaces_api::Namespaces::NewStub(state_->session.Channel());
  if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return Ok();
}

Status Client::DeleteNamespace(const std::string& name) const {
  namespaces_api::DeleteNamespaceRequest req;
  req.set_name(name);
  google::protobuf::Empty resp;
  auto ctx = state_->session.Context();
  auto stub = namespaces_api::Namespaces::NewStub(state_->session.Channel());
  if (auto st = stub->Delete(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return Ok();
}

// ---- Leases ----

Result<Lease> Client::CreateLease(const LeaseOptions& options) const {
  leases_api::CreateRequest req;
  req.set_id(options.id.empty() ? client::NewUniqueId() : options.id);
  for (const auto& [k, v] : options.labels) (*req.mutable_labels())[k] = v;
  if (options.expire.count() > 0) {
    auto at = std::chrono::system_clock::now() + options.expire;
    (*req.mutable_labels())["containerd.io/gc.expire"] = FormatRfc3339Local(
        std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count());
  }
  leases_api::CreateResponse resp;
  auto ctx = state_->session.Context();
  auto stub = leases_api::Leases::NewStub(state_->session.Channel());
  // The daemon's error as it came (the Go client's leases manager does not wrap it).
  if (auto st = stub->Create(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return FromProtoLease(resp.lease());
}

Status Client::DeleteLease(const std::string& id, bool sync) const {
  return client::DeleteLease(state_->session, id, sync);
}

Result<std::vector<Lease>> Client::Leases(const std::vector<std::string>& filters) const {
  leases_api::ListRequest req;
  for (const auto& f : filters) req.add_filters(f);
  leases_api::ListResponse resp;
  auto ctx = state_->session.Context();
  auto stub = leases_api::Leases::NewStub(state_->session.Channel());
  if (auto st = stub->List(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  std::vector<Lease> out;
  for (const auto& l : resp.leases()) out.push_back(FromProtoLease(l));
  return out;
}

Result<ScopedLease> Client::WithNewLease() const {
  if (!LeaseId().empty()) return ScopedLease(*this, false);
  BERTH_ASSIGN_OR_RETURN(Lease lease, CreateLease());
  return ScopedLease(WithLease(lease.id), true);
}

ScopedLease::ScopedLease(Client client, bool owned) : client_(std::move(client)), owned_(owned) {}

ScopedLease::ScopedLease(ScopedLease&& other) noexcept
    : client_(other.client_), owned_(other.owned_) {
  other.owned_ = false;
}

ScopedLease::~ScopedLease() { (void)Release(); }

Status ScopedLease::Release() {
  if (!owned_) return Ok();
  owned_ = false;
  return client_.DeleteLease(client_.LeaseId());
}

// ---- Events ----

struct EventStream::Impl {
  std::unique_ptr<events_api::Events::Stub> stub;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReader<events_api::Envelope>> reader;
  std::mutex mu;
  bool closed = false;
  bool finished = false;
};

EventStream::EventStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventStream::~EventStream() {
  Close();
  if (!impl_->finished) (void)impl_->reader->Finish();
}

void EventStream::Close() {
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->ctx->TryCancel();
}

Result<Envelope> EventStream::Next() {
  if (impl_->finished) return Unavailable("event stream: already ended");
  events_api::Envelope env;
  if (!impl_->reader->Read(&env)) {
    impl_->finished = true;
    grpc::Status st = impl_->reader->Finish();
    {
      std::lock_guard lock(impl_->mu);
      if (impl_->closed) return Error(Errc::kCanceled, "event stream closed");
    }
    if (!st.ok()) return client::FromGrpc(st);
    return Unknown("EOF");  // the daemon ended the stream: Go's io.EOF, as ctr prints it
  }
  Envelope out;
  out.timestamp = detail::FromProto(env.timestamp());
  out.ns = env.namespace_();
  out.topic = env.topic();
  out.type_url = env.event().type_url();
  out.data = env.event().value();
  if (auto msg = events::UnmarshalAny(env.event()); msg != nullptr) {
    google::protobuf::util::JsonPrintOptions opts;
    std::string json;
    if (google::protobuf::util::MessageToJsonString(*msg, &json, opts).ok()) out.json = json;
  }
  return out;
}

Result<std::unique_ptr<EventStream>> Client::Subscribe(
    const std::vector<std::string>& filters) const {
  auto impl = std::make_unique<EventStream::Impl>();
  impl->stub = events_api::Events::NewStub(state_->session.Channel());
  impl->ctx = detail::LongContext(state_->session);
  events_api::SubscribeRequest req;
  for (const auto& f : filters) req.add_filters(f);
  impl->reader = impl->stub->Subscribe(impl->ctx.get(), req);
  // Subscribed once the server has sent its initial metadata (berthd sends it on subscribing),
  // so no event published after Subscribe returns is lost.
  impl->reader->WaitForInitialMetadata();
  return std::make_unique<EventStream>(std::move(impl));
}

}  // namespace berth
