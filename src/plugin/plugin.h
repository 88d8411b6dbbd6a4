#pragma once
// Typed plugins with declared dependencies, initialised in dependency order (containerd's
// plugin/plugin.go and plugin/context.go). No static self-registration: server/builtins.cc calls
// every Register*() function, so the list of built-ins is one visible list.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <typeindex>
#include <vector>

#include <toml++/toml.h>

#include "common/errdefs.h"

namespace berth::plugin {

// Plugin types, as containerd names them.
inline constexpr const char* kContent = "io.containerd.content.v1";
inline constexpr const char* kSnapshot = "io.containerd.snapshotter.v1";
inline constexpr const char* kMetadata = "io.containerd.metadata.v1";
inline constexpr const char* kDiff = "io.containerd.differ.v1";
inline constexpr const char* kEvent = "io.containerd.event.v1";
inline constexpr const char* kGc = "io.containerd.gc.v1";
inline constexpr const char* kService = "io.containerd.service.v1";
inline constexpr const char* kGrpc = "io.containerd.grpc.v1";
inline constexpr const char* kTtrpc = "io.containerd.ttrpc.v1";
inline constexpr const char* kRuntimeV2 = "io.containerd.runtime.v2";
inline constexpr const char* kMonitor = "io.containerd.monitor.v1";
inline constexpr const char* kInternal = "io.containerd.internal.v1";

// The error a plugin returns when it does not apply here; introspection shows it as "skip".
Error Skip(std::string why);
bool IsSkip(const Error& error);

// A type-erased, shared plugin instance.
class Instance {
 public:
  template <class T>
  static Instance Of(std::shared_ptr<T> value) {
    Instance i;
    i.type_ = std::type_index(typeid(T));
    i.value_ = std::move(value);
    return i;
  }
  template <class T>
  T* As() const {
    return type_ == std::type_index(typeid(T)) ? static_cast<T*>(value_.get()) : nullptr;
  }

 private:
  Instance() = default;
  std::type_index type_ = std::type_index(typeid(void));
  std::shared_ptr<void> value_;
};

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

class InitContext;

struct Registration {
  std::string type;
  std::string id;
  // Types this plugin needs; "*" = every other plugin (introspection).
  std::vector<std::string> requires_types;
  // TOML body of the plugin's default [plugins."<type>.<id>"] table, for `berthd config default`.
  std::string config_defaults;
  // The plugin names unknown keys of its table itself (the CRI, whose keys nest deeply);
  // otherwise InitAll warns about top-level keys that config_defaults does not have.
  bool checks_own_config = false;
  std::function<Result<Instance>(InitContext&)> init;

  std::string Uri() const { return type + "." + id; }
};

// A plugin after initialisation: its instance or the error that stopped it.
struct Plugin {
  const Registration* registration = nullptr;
  std::optional<Instance> instance;
  std::optional<Error> error;
  std::map<std::string, std::string> exports;
  std::vector<Platform> platforms;
  std::vector<std::string> capabilities;
};

// The ordered set of initialised plugins.
class Set {
 public:
  Set() = default;
  Set(Set&&) = default;
  Set& operator=(Set&&) = default;
  // Plugins are destroyed in reverse init order, so none outlives what it depends on (the GC
  // scheduler stops before the snapshotters it sweeps are freed).
  ~Set() {
    while (!plugins_.empty()) plugins_.pop_back();
  }
  const std::vector<std::unique_ptr<Plugin>>& All() const { return plugins_; }
  // First successfully initialised instance of `type` whose C++ type is T.
  template <class T>
  T* Get(std::string_view type) const {
    for (const auto& p : plugins_) {
      if (p->registration->type == type && p->instance) {
        if (T* v = p->instance->As<T>()) return v;
      }
    }
    return nullptr;
  }
  // Every initialised instance of `type` as T, keyed by plugin id.
  template <class T>
  std::map<std::string, T*> GetAll(std::string_view type) const {
    std::map<std::string, T*> out;
    for (const auto& p : plugins_) {
      if (p->registration->type == type && p->instance) {
        if (T* v = p->instance->As<T>()) out.emplace(p->registration->id, v);
      }
    }
    return out;
  }
  void Append(std::unique_ptr<Plugin> p) { plugins_.push_back(std::move(p)); }

 private:
  std::vector<std::unique_ptr<Plugin>> plugins_;
};

struct InitOptions {
  std::string root;
  std::string state;
  std::string grpc_address;
  std::string ttrpc_address;
  std::map<std::string, toml::table> plugin_config;  // by URI
  std::vector<std::string> disabled;                 // URIs (or ids, as containerd accepts)
  std::vector<std::string> required;                 // URIs
};

class InitContext {
 public:
  InitContext(const InitOptions& options, Plugin& plugin, const Set& set);

  // <root>/<type>.<id> and <state>/<type>.<id> (not created: plugins create what they need).
  const std::string& Root() const { return root_; }
  const std::string& State() const { return state_; }
  const InitOptions& Options() const { return options_; }
  // The plugin's config table (empty if the file has none).
  const toml::table& Config() const { return config_; }
  std::map<std::string, std::string>& Exports() { return plugin_.exports; }
  std::vector<Platform>& Platforms() { return plugin_.platforms; }
  std::vector<std::string>& Capabilities() { return plugin_.capabilities; }
  // Plugins initialised so far (and, after start-up, all of them: the Set outlives init).
  const Set& Plugins() const { return set_; }

  // First instance of `type`, or NotFound naming what is missing.
  template <class T>
  Result<T*> GetSingle(std::string_view type) const {
    if (T* v = set_.Get<T>(type)) return v;
    return NotFound(std::string("no plugin of type ") + std::string(type) + " is loaded");
  }

 private:
  const InitOptions& options_;
  Plugin& plugin_;
  const Set& set_;
  std::string root_;
  std::string state_;
  toml::table config_;
};

class Registry {
 public:
  // Adds a plugin; a duplicate URI is a programming error.
  void Add(Registration registration);
  const std::vector<std::unique_ptr<Registration>>& All() const { return registrations_; }

  // Registrations in initialisation order: every plugin comes after the plugins of the types it
  // requires (registration order otherwise). Disabled ones are left out.
  std::vector<const Registration*> Graph(const std::vector<std::string>& disabled) const;

  // Initialises everything in Graph() order. A failing plugin is recorded (introspection shows
  // it) and start-up goes on, unless the plugin is listed in `required`.
  Result<std::unique_ptr<Set>> InitAll(const InitOptions& options) const;
  // What InitAll warns about in the [plugins] tables: a table for no plugin berth has, and a
  // top-level key a plugin does not know (as its config_defaults list them), e.g. a misspelt
  // `pause_treshold`. Nothing is refused: containerd ignores such keys too.
  std::vector<std::string> ConfigWarnings(
      const std::map<std::string, toml::table>& plugin_config) const;

 private:
  std::vector<std::unique_ptr<Registration>> registrations_;
};

}  // namespace berth::plugin
