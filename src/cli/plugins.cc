#include <github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h>

#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/app.h"
#include "cli/table.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

namespace api = containerd::services::introspection::v1;

std::set<std::string> PlatformSet(
    const google::protobuf::RepeatedPtrField<containerd::types::Platform>& ps) {
  std::set<std::string> set;
  for (const auto& p : ps) {
    std::string s = p.os() + "/" + p.architecture();
    if (!p.variant().empty()) s += "/" + p.variant();
    set.insert(s);
  }
  return set;
}

std::string PrettyPlatforms(
    const google::protobuf::RepeatedPtrField<containerd::types::Platform>& ps) {
  return fmt::format("{}", fmt::join(PlatformSet(ps), ","));
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
  auto format = std::make_shared<std::string>("table");
  cmd->add_flag("-q,--quiet", *quiet, "print only the plugin ids");
  cmd->add_flag("-d,--detailed", *detailed, "print detailed information about each plugin");
  AddFormatFlag(cmd, format);
  cmd->add_option("filters", *filters, "filters (e.g. type==io.containerd.grpc.v1)");
  SetAction(cmd, [&app, quiet, detailed, format, filters]() -> Status {
    BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(*format));
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
    if (*detailed && output == OutputFormat::kTable) {
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
    Table table({{"TYPE", "type"},
                 {"ID", "id"},
                 {"PLATFORMS", "platforms"},
                 {"STATUS", "status"},
                 {"", "requires"},
                 {"", "exports"},
                 {"", "capabilities"},
                 {"", "error"}},
                {.writer = TabWriter(4, 4)});
    for (const auto& p : resp.plugins()) {
      std::string status = "ok";
      nlohmann::json error = nullptr;
      if (p.has_init_err()) {
        status = p.init_err().message().find("skip plugin") != std::string::npos ? "skip" : "error";
        error = {{"code", std::string(CodeName(p.init_err().code()))},
                 {"message", p.init_err().message()}};
      }
      std::string platforms = p.platforms_size() > 0 ? PrettyPlatforms(p.platforms()) : "-";
      nlohmann::json platform_list = PlatformSet(p.platforms());
      table.Add({p.type(), p.id(), Cell(platforms, std::move(platform_list)), status,
                 Cell("", nlohmann::json(std::vector<std::string>(p.requires_types().begin(),
                                                                  p.requires_types().end()))),
                 Cell("", nlohmann::json(std::map<std::string, std::string>(p.exports().begin(),
                                                                            p.exports().end()))),
                 Cell("", nlohmann::json(std::vector<std::string>(p.capabilities().begin(),
                                                                  p.capabilities().end()))),
                 Cell("", std::move(error))});
    }
    fmt::print("{}", table.Render(output));
    return Ok();
  });
}

}  // namespace berth::cli
