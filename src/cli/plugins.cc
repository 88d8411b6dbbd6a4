// `berth plugins`: ctr's plugin listing over the client library.
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/app.h"
#include "cli/run.h"
#include "cli/table.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

std::set<std::string> PlatformSet(const std::vector<std::string>& platforms) {
  return {platforms.begin(), platforms.end()};
}

std::string PrettyPlatforms(const std::vector<std::string>& platforms) {
  return fmt::format("{}", fmt::join(PlatformSet(platforms), ","));
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
    BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
    BERTH_ASSIGN_OR_RETURN(auto plugins, LibClient(session).Plugins(*filters));
    if (*quiet) {
      for (const auto& p : plugins) fmt::print("{}\n", p.id);
      return Ok();
    }
    TabWriter w(4, 4);
    if (*detailed && output == OutputFormat::kTable) {
      bool first = true;
      for (const auto& p : plugins) {
        if (!first) w.Write("\t\t\t\n");
        first = false;
        w.Write(fmt::format("Type:\t {}\n", p.type));
        w.Write(fmt::format("ID:\t {}\n", p.id));
        if (!p.requires_types.empty()) {
          w.Write("Requires:\t\n");
          for (const auto& r : p.requires_types) w.Write(fmt::format("\t {}\n", r));
        }
        if (!p.platforms.empty()) {
          w.Write(fmt::format("Platforms:\t {}\n", PrettyPlatforms(p.platforms)));
        }
        if (!p.exports.empty()) {
          w.Write("Exports:\t\n");
          for (const auto& [k, v] : p.exports) w.Write(fmt::format("\t {} \t {}\n", k, v));
        }
        if (!p.capabilities.empty()) {
          w.Write(fmt::format("Capabilities:\t {}\n", fmt::join(p.capabilities, ",")));
        }
        if (p.init_error) {
          w.Write("Error:\t\n");
          w.Write(fmt::format("\t Code:\t {}\n", CodeName(p.init_error->code)));
          w.Write(fmt::format("\t Message:\t {}\n", p.init_error->message));
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
    for (const auto& p : plugins) {
      std::string status = "ok";
      nlohmann::json error = nullptr;
      if (p.init_error) {
        status = p.init_error->message.find("skip plugin") != std::string::npos ? "skip" : "error";
        error = {{"code", std::string(CodeName(p.init_error->code))},
                 {"message", p.init_error->message}};
      }
      std::string platforms = !p.platforms.empty() ? PrettyPlatforms(p.platforms) : "-";
      nlohmann::json platform_list = PlatformSet(p.platforms);
      table.Add({p.type, p.id, Cell(platforms, std::move(platform_list)), status,
                 Cell("", nlohmann::json(p.requires_types)), Cell("", nlohmann::json(p.exports)),
                 Cell("", nlohmann::json(p.capabilities)), Cell("", std::move(error))});
    }
    fmt::print("{}", table.Render(output));
    return Ok();
  });
}

}  // namespace berth::cli
