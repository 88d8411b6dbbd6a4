// berth::Container and the NewContainer options.
#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>

#include <fmt/format.h>

#include "client/lib_internal.h"
#include "client/unpack.h"
#include "oci/spec.h"

namespace berth {
namespace {

namespace containers_api = containerd::services::containers::v1;
namespace tasks_api = containerd::services::tasks::v1;

constexpr const char* kDefaultRuntime = "io.containerd.runc.v2";

}  // namespace

ContainerInfo detail::ContainerFromProto(const containers_api::Container& c) {
  ContainerInfo out;
  out.id = c.id();
  out.labels = {c.labels().begin(), c.labels().end()};
  out.image = c.image();
  out.runtime.name = c.runtime().name();
  if (c.runtime().has_options()) {
    out.runtime.options_type_url = c.runtime().options().type_url();
    out.runtime.options = c.runtime().options().value();
  }
  if (c.has_spec() && !c.spec().value().empty()) {
    out.spec = nlohmann::json::parse(c.spec().value(), nullptr, false);
    if (out.spec.is_discarded()) out.spec = nullptr;
  }
  out.snapshotter = c.snapshotter();
  out.snapshot_key = c.snapshot_key();
  out.created_at = detail::FromProto(c.created_at());
  out.updated_at = detail::FromProto(c.updated_at());
  return out;
}

namespace {

containers_api::Container ToProto(const ContainerInfo& info) {
  containers_api::Container c;
  c.set_id(info.id);
  for (const auto& [k, v] : info.labels) (*c.mutable_labels())[k] = v;
  c.set_image(info.image);
  c.mutable_runtime()->set_name(info.runtime.name);
  if (!info.runtime.options_type_url.empty()) {
    c.mutable_runtime()->mutable_options()->set_type_url(info.runtime.options_type_url);
    c.mutable_runtime()->mutable_options()->set_value(info.runtime.options);
  }
  if (!info.spec.is_null()) {
    c.mutable_spec()->set_type_url(std::string(oci::kSpecTypeUrl));
    c.mutable_spec()->set_value(info.spec.dump());
  }
  c.set_snapshotter(info.snapshotter);
  c.set_snapshot_key(info.snapshot_key);
  return c;
}

std::unique_ptr<containers_api::Containers::Stub> Stub(const detail::ClientState& s) {
  return containers_api::Containers::NewStub(s.session.Channel());
}

Result<ContainerInfo> Get(const detail::ClientState& s, const std::string& id) {
  containers_api::GetContainerRequest req;
  req.set_id(id);
  containers_api::GetContainerResponse resp;
  auto ctx = s.session.Context();
  if (auto st = Stub(s)->Get(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st).Wrap(fmt::format("container {:?}", id));
  }
  return detail::ContainerFromProto(resp.container());
}

Result<std::string> Snapshotter(const ContainerBuilder& b) {
  return client::ResolveSnapshotterName(b.client->State()->session, b.info.snapshotter);
}

NewContainerOpt SnapshotOpt(std::string key, const Image& image, bool view) {
  return [key = std::move(key), image, view](ContainerBuilder& b) -> Status {
    BERTH_ASSIGN_OR_RETURN(std::string snapshotter, Snapshotter(b));
    // Unpacked already (a pull with unpack) or unpacked now, as ctr's run does.
    BERTH_ASSIGN_OR_RETURN(bool unpacked, image.IsUnpacked(snapshotter));
    if (!unpacked) BERTH_TRY(image.Unpack(snapshotter));
    BERTH_ASSIGN_OR_RETURN(auto diff_ids, image.RootFs());
    client::SnapshotClient snapshots(b.client->State()->session, snapshotter);
    std::string parent = images::ChainId(diff_ids);
    if (view) {
      BERTH_TRY(snapshots.View(key, parent));
    } else {
      BERTH_TRY(snapshots.Prepare(key, parent));
    }
    b.prepared.emplace_back(snapshotter, key);
    b.info.snapshotter = snapshotter;
    b.info.snapshot_key = key;
    return Ok();
  };
}

Status ApplySpecOpts(const ContainerBuilder& b, Spec& spec, const std::vector<SpecOpt>& opts) {
  SpecContext ctx{b.client, &b.info};
  for (const auto& opt : opts) {
    if (opt) BERTH_TRY(opt(ctx, spec));
  }
  return Ok();
}

}  // namespace

const DeleteOpt WithSnapshotCleanup = [](const Client& client, const ContainerInfo& c) -> Status {
  if (c.snapshot_key.empty() || c.snapshotter.empty()) return Ok();
  client::SnapshotClient snapshots(client.State()->session, c.snapshotter);
  if (Status st = snapshots.Remove(c.snapshot_key); !st && !st.error().Is(Errc::kNotFound)) {
    return std::move(st).error().Wrap(fmt::format("remove snapshot {:?}", c.snapshot_key));
  }
  return Ok();
};

NewContainerOpt WithImage(const Image& image) {
  return [name = image.Name()](ContainerBuilder& b) -> Status {
    b.info.image = name;
    return Ok();
  };
}

NewContainerOpt WithImageConfigLabels(const Image& image) {
  return [image](ContainerBuilder& b) -> Status {
    BERTH_ASSIGN_OR_RETURN(ImageConfig config, image.Config());
    for (const auto& [k, v] : config.labels) b.info.labels[k] = v;
    return Ok();
  };
}

NewContainerOpt WithSnapshotter(std::string name) {
  return [name = std::move(name)](ContainerBuilder& b) -> Status {
    b.info.snapshotter = name;
    return Ok();
  };
}

NewContainerOpt WithNewSnapshot(std::string key, const Image& image) {
  return SnapshotOpt(std::move(key), image, false);
}

NewContainerOpt WithNewSnapshotView(std::string key, const Image& image) {
  return SnapshotOpt(std::move(key), image, true);
}

NewContainerOpt WithSnapshot(std::string key) {
  return [key = std::move(key)](ContainerBuilder& b) -> Status {
    BERTH_ASSIGN_OR_RETURN(std::string snapshotter, Snapshotter(b));
    client::SnapshotClient snapshots(b.client->State()->session, snapshotter);
    BERTH_TRY(snapshots.Stat(key));
    b.info.snapshotter = snapshotter;
    b.info.snapshot_key = key;
    return Ok();
  };
}

NewContainerOpt WithRuntime(std::string name, std::string options_type_url, std::string options) {
  return [name = std::move(name), url = std::move(options_type_url),
          options = std::move(options)](ContainerBuilder& b) -> Status {
    b.info.runtime = {name, url, options};
    return Ok();
  };
}

NewContainerOpt WithNewSpec(std::vector<SpecOpt> opts) {
  return [opts = std::move(opts)](ContainerBuilder& b) -> Status {
    Spec spec = oci::DefaultSpec(b.client->Namespace(), b.info.id);
    oci::WithDefaultUnixDevices(spec);  // as ctr adds to every container
    BERTH_TRY(ApplySpecOpts(b, spec, opts));
    b.info.spec = std::move(spec);
    return Ok();
  };
}

NewContainerOpt WithSpec(Spec spec, std::vector<SpecOpt> opts) {
  return [spec = std::move(spec), opts = std::move(opts)](ContainerBuilder& b) -> Status {
    if (!spec.is_object()) return InvalidArgument("WithSpec: the spec must be a JSON object");
    Spec s = spec;
    BERTH_TRY(ApplySpecOpts(b, s, opts));
    b.info.spec = std::move(s);
    return Ok();
  };
}

NewContainerOpt WithContainerLabels(std::map<std::string, std::string> labels) {
  return [labels = std::move(labels)](ContainerBuilder& b) -> Status {
    for (const auto& [k, v] : labels) b.info.labels[k] = v;
    return Ok();
  };
}

// ---- Client ----

Result<Container> Client::NewContainer(const std::string& id,
                                       std::vector<NewContainerOpt> opts) const {
  if (id.empty()) return InvalidArgument("new container: the id must not be empty");
  // As the Go client: everything is created under a lease (a temporary one unless this client
  // has its own), so a snapshot prepared for a container that fails to appear is collected.
  BERTH_ASSIGN_OR_RETURN(ScopedLease lease, WithNewLease());
  const Client& leased = lease.client();
  ContainerBuilder b{&leased, {}, {}};
  b.info.id = id;
  b.info.runtime.name = kDefaultRuntime;
  auto fail = [&](Error err) -> Error {
    for (const auto& [snapshotter, key] : b.prepared) {
      (void)client::SnapshotClient(leased.State()->session, snapshotter).Remove(key);
    }
    return std::move(err).Wrap(fmt::format("new container {:?}", id));
  };
  for (const auto& opt : opts) {
    if (!opt) continue;
    if (Status st = opt(b); !st) return fail(std::move(st).error());
  }
  containers_api::CreateContainerRequest req;
  *req.mutable_container() = ToProto(b.info);
  containers_api::CreateContainerResponse resp;
  auto ctx = leased.State()->session.Context();
  if (auto st = Stub(*state_)->Create(ctx.get(), req, &resp); !st.ok()) {
    return fail(client::FromGrpc(st));
  }
  return Container(state_, detail::ContainerFromProto(resp.container()));
}

Result<Container> Client::LoadContainer(const std::string& id) const {
  BERTH_ASSIGN_OR_RETURN(ContainerInfo info, Get(*state_, id));
  return Container(state_, std::move(info));
}

Result<std::vector<Container>> Client::Containers(const std::vector<std::string>& filters) const {
  containers_api::ListContainersRequest req;
  for (const auto& f : filters) req.add_filters(f);
  containers_api::ListContainersResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = Stub(*state_)->List(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  std::vector<Container> out;
  for (const auto& c : resp.containers()) out.emplace_back(state_, detail::ContainerFromProto(c));
  return out;
}

// ---- Container ----

Container::Container(std::shared_ptr<const detail::ClientState> client, ContainerInfo info)
    : client_(std::move(client)), info_(std::move(info)) {}

Result<ContainerInfo> Container::Info() const { return Get(*client_, info_.id); }

Result<Spec> Container::GetSpec() const {
  BERTH_ASSIGN_OR_RETURN(ContainerInfo info, Info());
  if (info.spec.is_null()) return NotFound(fmt::format("container {:?} has no spec", info_.id));
  return info.spec;
}

Result<berth::Image> Container::GetImage() const {
  BERTH_ASSIGN_OR_RETURN(ContainerInfo info, Info());
  if (info.image.empty()) {
    return NotFound(fmt::format("container {:?} has no image", info_.id));
  }
  return Client(client_).GetImage(info.image);
}

Result<std::map<std::string, std::string>> Container::Labels() const {
  BERTH_ASSIGN_OR_RETURN(ContainerInfo info, Info());
  return info.labels;
}

Result<std::map<std::string, std::string>> Container::SetLabels(
    const std::map<std::string, std::string>& labels) {
  containers_api::UpdateContainerRequest req;
  req.mutable_container()->set_id(info_.id);
  for (const auto& [k, v] : labels) {
    (*req.mutable_container()->mutable_labels())[k] = v;
    req.mutable_update_mask()->add_paths("labels." + k);
  }
  containers_api::UpdateContainerResponse resp;
  auto ctx = client_->session.Context();
  if (auto st = Stub(*client_)->Update(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st).Wrap(fmt::format("set labels of container {:?}", info_.id));
  }
  info_ = detail::ContainerFromProto(resp.container());
  return info_.labels;
}

Status Container::Delete(std::vector<DeleteOpt> opts) const {
  // container.Delete: not while a task exists.
  {
    auto stub = tasks_api::Tasks::NewStub(client_->session.Channel());
    tasks_api::GetRequest req;
    req.set_container_id(info_.id);
    tasks_api::GetResponse resp;
    auto ctx = client_->session.Context();
    if (stub->Get(ctx.get(), req, &resp).ok()) {
      return FailedPrecondition(
          fmt::format("cannot delete container {:?}: it has a task", info_.id));
    }
  }
  BERTH_ASSIGN_OR_RETURN(ContainerInfo info, Info());
  Client client(client_);
  for (const auto& opt : opts) {
    if (opt) BERTH_TRY(opt(client, info));
  }
  containers_api::DeleteContainerRequest req;
  req.set_id(info_.id);
  google::protobuf::Empty resp;
  auto ctx = client_->session.Context();
  if (auto st = Stub(*client_)->Delete(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st).Wrap(fmt::format("delete container {:?}", info_.id));
  }
  return Ok();
}

}  // namespace berth
