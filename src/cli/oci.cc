// `berth oci spec`: the default OCI runtime spec berth gives a container (ctr's `oci spec`).
#include <fmt/format.h>

#include "cli/root.h"
#include "oci/spec.h"

namespace berth::cli {

void AddOciCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("oci", "OCI tools");
  group->require_subcommand(1);
  auto* cmd = group->add_subcommand("spec", "see the output of the default OCI spec");
  SetAction(cmd, [&app]() -> Status {
    // As ctr: the spec of a container without id in the current namespace; keys are sorted
    // (ctr prints Go's field order), the values are the same.
    fmt::print("{}\n", oci::DefaultSpec(app.Flags().ns, "").dump(4));
    return Ok();
  });
}

}  // namespace berth::cli
