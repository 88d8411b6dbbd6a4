#pragma once
// libberth-client: the C++ client library of berthd, as containerd's Go client package.
//
//   auto client = berth::Client::Connect("/run/berth/berth.sock", {.default_namespace = "demo"});
//   auto image = client->Pull("docker.io/library/redis:alpine", {.unpack = true});
//   auto container = client->NewContainer("redis", berth::WithNewSnapshot("redis-snap", *image),
//                                         berth::WithNewSpec(berth::WithImageConfig(*image)));
//   auto task = container->NewTask(berth::cio::Stdio());
//   auto waiter = task->Wait();  task->Start();  auto status = waiter->Get();
//
// Every call carries the client's namespace (and lease, if any); no gRPC or protobuf type
// appears in these headers. A Client is cheap to copy: copies share the connection.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "berth/cio.h"
#include "berth/containers.h"
#include "berth/errors.h"
#include "berth/events.h"
#include "berth/images.h"
#include "berth/leases.h"
#include "berth/tasks.h"

namespace berth {

struct ClientOptions {
  std::string default_namespace = "default";
  // Bound of each unary call (zero: none). Waits and event streams are not bounded.
  std::chrono::nanoseconds timeout{};
  // How long Connect waits for the daemon to answer (zero: 10 s).
  std::chrono::nanoseconds connect_timeout{};
};

struct VersionInfo {
  std::string version;
  std::string revision;
};

// What identifies the daemon (client.Server): its UUID, kept across restarts.
struct ServerInfo {
  std::string uuid;
};

// A namespace and its labels (namespaces.Store).
struct NamespaceInfo {
  std::string name;
  std::map<std::string, std::string> labels;
};

// A plugin of the daemon as introspection reports it.
struct PluginInfo {
  std::string type;                         // "io.containerd.snapshotter.v1"
  std::string id;                           // "overlayfs"
  std::vector<std::string> requires_types;  // the plugin types it needs
  std::vector<std::string> platforms;       // "os/arch[/variant]"
  std::map<std::string, std::string> exports;
  std::vector<std::string> capabilities;
  // Why it did not load: a gRPC status code number and its message ("skip plugin ..." for one
  // that chose not to); nullopt when it loaded.
  struct InitError {
    int code = 0;
    std::string message;
  };
  std::optional<InitError> init_error;
};

class ScopedLease;

class Client {
 public:
  // Dials berthd's unix socket ("unix://" prefix optional) and waits until it answers.
  static Result<Client> Connect(const std::string& address, ClientOptions options = {});

  // A client for the same connection whose calls use namespace `ns`.
  Client WithNamespace(std::string ns) const;
  // A client whose calls run under lease `id` (what they create is kept while it lives).
  Client WithLease(std::string id) const;
  const std::string& Namespace() const;
  const std::string& LeaseId() const;

  Result<VersionInfo> Version() const;
  Result<ServerInfo> Server() const;
  // The daemon's plugins (introspection Plugins); containerd filters ("type==...") any may match.
  Result<std::vector<PluginInfo>> Plugins(const std::vector<std::string>& filters = {}) const;

  // ---- Namespaces (client.NamespaceService) ----
  Status CreateNamespace(const std::string& name,
                         const std::map<std::string, std::string>& labels = {}) const;
  Result<std::vector<NamespaceInfo>> Namespaces() const;
  // Sets one label of namespace `name`; an empty value removes it.
  Status SetNamespaceLabel(const std::string& name, const std::string& key,
                           const std::string& value) const;
  // FailedPrecondition while the namespace holds anything.
  Status DeleteNamespace(const std::string& name) const;

  // ---- Images ----
  // client.Pull: `ref` is normalized ("busybox" -> docker.io/library/busybox:latest).
  Result<Image> Pull(const std::string& ref, const PullOptions& options = {}) const;
  // client.Push of the image record `local` ("" = `remote`) to `remote`; the pushed root.
  Result<Descriptor> Push(const std::string& remote, const std::string& local = "",
                          const PushOptions& options = {}) const;
  // client.Import of an OCI layout / docker save tar at `path`; the images created.
  Result<std::vector<Image>> Import(const std::string& path,
                                    const ImportOptions& options = {}) const;
  // client.Export of the named images to an OCI layout tar at `path`.
  Status Export(const std::string& path, const std::vector<std::string>& images,
                const ExportOptions& options = {}) const;
  Result<Image> GetImage(const std::string& name) const;
  // containerd filters ("name==x", "labels.k==v"); any may match.
  Result<std::vector<Image>> ListImages(const std::vector<std::string>& filters = {}) const;
  Status DeleteImage(const std::string& name, bool sync = false) const;

  // ---- Containers ----
  Result<Container> NewContainer(const std::string& id, std::vector<NewContainerOpt> opts) const;
  template <typename... Opts>
  Result<Container> NewContainer(const std::string& id, Opts... opts) const {
    return NewContainer(id, std::vector<NewContainerOpt>{NewContainerOpt(std::move(opts))...});
  }
  Result<Container> LoadContainer(const std::string& id) const;
  Result<std::vector<Container>> Containers(const std::vector<std::string>& filters = {}) const;

  // ---- Tasks ----
  // Every task of the namespace (the tasks service's List).
  Result<std::vector<TaskInfo>> Tasks() const;

  // ---- Events ----
  // Events matching any of `filters` ("topic==/tasks/exit", "namespace==x"); none = all.
  Result<std::unique_ptr<EventStream>> Subscribe(
      const std::vector<std::string>& filters = {}) const;

  // ---- Leases ----
  Result<Lease> CreateLease(const LeaseOptions& options = {}) const;
  Status DeleteLease(const std::string& id, bool sync = false) const;
  Result<std::vector<Lease>> Leases(const std::vector<std::string>& filters = {}) const;
  // client.WithLease: a new lease (24 h) and a client using it; the lease is deleted when the
  // ScopedLease goes away. If this client already has a lease, that one is used and kept.
  Result<ScopedLease> WithNewLease() const;

  // The shared state behind this client (used by Image, Container, Task).
  const std::shared_ptr<const detail::ClientState>& State() const { return state_; }
  explicit Client(std::shared_ptr<const detail::ClientState> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<const detail::ClientState> state_;
};

class ScopedLease {
 public:
  ScopedLease(Client client, bool owned);
  ~ScopedLease();
  ScopedLease(ScopedLease&& other) noexcept;
  ScopedLease& operator=(ScopedLease&&) = delete;
  ScopedLease(const ScopedLease&) = delete;
  ScopedLease& operator=(const ScopedLease&) = delete;

  const Client& client() const { return client_; }
  // Deletes the lease now (if this scope created it); errors are reported here.
  Status Release();

 private:
  Client client_;
  bool owned_;
};

}  // namespace berth
