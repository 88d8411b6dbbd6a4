#include "plugin/plugin.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "common/log.h"

namespace berth::plugin {

Error Skip(std::string why) { return Unknown(std::move(why) + ": skip plugin"); }

bool IsSkip(const Error& error) { return error.What().find("skip plugin") != std::string::npos; }

InitContext::InitContext(const InitOptions& options, Plugin& plugin, const Set& set)
    : options_(options),
      plugin_(plugin),
      set_(set),
      root_(options.root + "/" + plugin.registration->Uri()),
      state_(options.state + "/" + plugin.registration->Uri()) {
  auto it = options.plugin_config.find(plugin.registration->Uri());
  if (it != options.plugin_config.end()) {
    config_ = it->second;
  }
}

void Registry::Add(Registration registration) {
  for (const auto& r : registrations_) {
    BERTH_CHECK(r->Uri() != registration.Uri(), "plugin registered twice: " + registration.Uri());
  }
  registrations_.push_back(std::make_unique<Registration>(std::move(registration)));
}

std::vector<const Registration*> Registry::Graph(const std::vector<std::string>& disabled) const {
  auto is_disabled = [&](const Registration& r) {
    return std::find_if(disabled.begin(), disabled.end(), [&](const std::string& d) {
             return d == r.Uri() || d == r.id;
           }) != disabled.end();
  };
  std::vector<const Registration*> order;
  std::set<const Registration*> added;
  std::set<const Registration*> visiting;
  std::function<void(const Registration*)> visit = [&](const Registration* r) {
    if (added.count(r) != 0 || visiting.count(r) != 0) return;
    visiting.insert(r);
    for (const auto& t : r->requires_types) {
      if (t == "*") continue;
      for (const auto& other : registrations_) {
        if (other->type == t && other.get() != r && !is_disabled(*other)) visit(other.get());
      }
    }
    visiting.erase(r);
    added.insert(r);
    order.push_back(r);
  };
  // "*" plugins go last: they see everything.
  for (const auto& r : registrations_) {
    bool star = std::find(r->requires_types.begin(), r->requires_types.end(), "*") !=
                r->requires_types.end();
    if (!is_disabled(*r) && !star) visit(r.get());
  }
  for (const auto& r : registrations_) {
    if (!is_disabled(*r)) visit(r.get());
  }
  return order;
}

std::vector<std::string> Registry::ConfigWarnings(
    const std::map<std::string, toml::table>& plugin_config) const {
  std::vector<std::string> out;
  for (const auto& entry : plugin_config) {
    const std::string& uri = entry.first;  // a structured binding cannot be captured (clang 14)
    const toml::table& table = entry.second;
    auto it = std::find_if(registrations_.begin(), registrations_.end(),
                           [&uri](const auto& r) { return r->Uri() == uri; });
    if (it == registrations_.end()) {
      out.push_back(
          fmt::format("config: plugins.{:?} is not a berth plugin; its table is ignored", uri));
      continue;
    }
    const Registration& r = **it;
    if (r.checks_own_config) continue;
    toml::table defaults;
    try {
      defaults = toml::parse(r.config_defaults);
    } catch (const toml::parse_error&) {
      continue;  // DefaultConfigToml reports a broken default
    }
    for (const auto& [key, value] : table) {
      if (!defaults.contains(key.str())) {
        out.push_back(
            fmt::format("config: unknown key plugins.{:?}.{} (not a setting of this "
                        "plugin; `berthd config default` lists them)",
                        uri, key.str()));
      }
    }
  }
  return out;
}

Result<std::unique_ptr<Set>> Registry::InitAll(const InitOptions& options) const {
  for (const auto& w : ConfigWarnings(options.plugin_config)) log::L().Warn(w);
  auto set = std::make_unique<Set>();
  for (const Registration* r : Graph(options.disabled)) {
    auto plugin = std::make_unique<Plugin>();
    plugin->registration = r;
    InitContext ic(options, *plugin, *set);
    auto instance = r->init(ic);
    auto entry = log::L().With("type", r->type).With("id", r->id);
    if (instance) {
      plugin->instance = std::move(*instance);
      entry.Debug("plugin loaded");
    } else {
      Error err = std::move(instance).error();
      bool required = std::find(options.required.begin(), options.required.end(), r->Uri()) !=
                      options.required.end();
      if (IsSkip(err)) {
        entry.WithError(err).Info("skip loading plugin");
      } else {
        entry.WithError(err).Warn("failed to load plugin");
      }
      if (required) {
        return std::move(err).Wrap(fmt::format("load required plugin {}", r->Uri()));
      }
      plugin->error = std::move(err);
    }
    set->Append(std::move(plugin));
  }
  for (const auto& uri : options.required) {
    bool found = std::any_of(set->All().begin(), set->All().end(), [&](const auto& p) {
      return p->registration->Uri() == uri && p->instance;
    });
    if (!found) {
      return FailedPrecondition(fmt::format("required plugin {} is not loaded", uri));
    }
  }
  return set;
}

}  // namespace berth::plugin
