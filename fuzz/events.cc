// An event envelope as a shim or client forwards it: lines "topic", "namespace", "type URL",
// then the event's bytes. Validated as Forward validates it, then decoded field by field as
// subscription filters read it (event.<field>, labels, nested Any).
#include <string>
#include <string_view>
#include <vector>

#include "common/filters.h"
#include "events/events.h"
#include "events/fields.h"
#include "fuzz/fuzz.h"

namespace {

std::string_view Line(std::string_view& in) {
  size_t at = in.find('\n');
  std::string_view line = in.substr(0, at);
  in.remove_prefix(at == std::string_view::npos ? in.size() : at + 1);
  return line;
}

}  // namespace

BERTH_FUZZ_TARGET(events) {
  using namespace berth;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  events::Envelope env;
  env.topic = std::string(Line(in));
  env.ns = std::string(Line(in));
  std::string_view type = Line(in);
  // A short number picks one of containerd's event types; anything else is the URL itself.
  static const std::vector<std::string> kTypes = {
      "containerd.events.ContainerCreate", "containerd.events.ContainerUpdate",
      "containerd.events.TaskCreate",      "containerd.events.TaskExit",
      "containerd.events.ImageUpdate",     "containerd.events.NamespaceUpdate",
      "containerd.events.SnapshotCommit",  "containerd.events.TaskExecAdded"};
  if (type.size() == 1 && type[0] >= '0' && type[0] < '0' + static_cast<int>(kTypes.size())) {
    env.event.set_type_url(kTypes[static_cast<size_t>(type[0] - '0')]);
  } else {
    env.event.set_type_url(std::string(type));
  }
  env.event.set_value(std::string(in));
  env.timestamp = Now();
  (void)events::ValidateEnvelope(env);
  events::EnvelopeFields fields(env);
  for (const auto& path :
       std::vector<std::vector<std::string>>{{"topic"},
                                             {"namespace"},
                                             {"event", "id"},
                                             {"event", "container_id"},
                                             {"event", "labels", "a"},
                                             {"event", "name"},
                                             {"event", "runtime", "name"},
                                             {"event", "runtime", "options", "binary_name"},
                                             {"event", "rootfs", "type"},
                                             {"event", "exit_status"}}) {
    (void)fields.Field(path);
  }
  if (auto f = filters::Parse(R"(topic~="^/tasks/",event.container_id=="c1",event.labels.a)"); f) {
    (void)f->Match(fields.Adaptor());
  }
  return 0;
}
