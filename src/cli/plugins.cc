#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>

#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/app.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

namespace api = containerd::services::introspection::v1;

std::string PrettyPlatforms(
    const google::protobuf::RepeatedPtrField<containerd::types::Platform>& ps) {
  std::set<std::string> set;
  for (const auto& p : ps) {
    std::string s = p.os() + "/" + p.architecture();
    if (!p.variant().empty()) s += "/" + p.variant();
    set.insert(s);
  }
  return fmt::format("{}", fmt::join(set, ","));
}

std::string_view CodeName(int code) {
  static constexpr std::string_view kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "Unknown";
}

}  // namespace

void AddPluginsCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("plugins", "provides information about berthd plugins");
  group->alias("plugin");
  group->require_subcommand(1);
  auto* cmd = group->add_subcommand("list", "lists berthd plugins");
  cmd->alias("ls");
  auto quiet = std::make_shared<bool>(false);
  auto detailed = std::make_shared<bool>(false);
  auto filters = std::make_shared<std::vector<std::string>>();
  cmd->add_flag("-q,--quiet", *quiet, "print only the plugin ids");
  cmd->add_flag("-d,--detailed", *detailed, "print detailed information about each plugin");
  cmd->add_option("filters", *filters, "filters (e.g. type==io.containerd.grpc.v1)");
  SetAction(cmd, [&app, quiet, detailed, filters]() -> Status {
    BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
    auto stub = api::Introspection::NewStub(channel);
    api::PluginsRequest req;
    for (const auto& f : *filters) req.add_filters(f);
    api::PluginsResponse resp;
    auto ctx = app.NewContext();
    if (auto st = stub->Plugins(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
    if (*quiet) {
      for (const auto& p : resp.plugins()) fmt::print("{}\n", p.id());
      return Ok();
    }
    TabWriter w(4, 4);
    if (*detailed) {
      bool first = true;
      for (const auto& p : resp.plugins()) {
        if (!first) w.Write("\t\t\t\n");
        first = false;
        w.Write(fmt::format("Type:\t {}\n", p.type()));
        w.Write(fmt::format("ID:\t {}\n", p.id()));
        if (p.requires_types_size() > 0) {
          w.Write("Requires:\t\n");
          for (const auto& r : p.requires_types()) w.Write(fmt::format("\t {}\n", r));
        }
        if (p.platforms_size() > 0) {
          w.Write(fmt::format("Platforms:\t {}\n", PrettyPlatforms(p.platforms())));
        }
        if (!p.exports().empty()) {
          w.Write("Exports:\t\n");
          std::map<std::string, std::string> sorted(p.exports().begin(), p.exports().end());
          for (const auto& [k, v] : sorted) w.Write(fmt::format("\t {} \t {}\n", k, v));
        }
        if (p.capabilities_size() > 0) {
          w.Write(fmt::format("Capabilities:\t {}\n", fmt::join(p.capabilities(), ",")));
        }
        if (p.has_init_err()) {
          w.Write("Error:\t\n");
          w.Write(fmt::format("\t Code:\t {}\n", CodeName(p.init_err().code())));
          w.Write(fmt::format("\t Message:\t {}\n", p.init_err().message()));
        }
      }
      fmt::print("{}", w.Flush());
      return Ok();
    }
    w.Write("TYPE\tID\tPLATFORMS\tSTATUS\t\n");
    for (const auto& p : resp.plugins()) {
      std::string status = "ok";
      if (p.has_init_err()) {
        status = p.init_err().message().find("skip plugin") != std::string::npos ? "skip" : "error";
      }
      std::string platforms = p.platforms_size() > 0 ? PrettyPlatforms(p.platforms()) : "-";
      w.Write(fmt::format("{}\t{}\t{}\t{}\t\n", p.type(), p.id(), platforms, status));
    }
    fmt::print("{}", w.Flush());
    return Ok();
  });
}

}  // namespace berth::cli
