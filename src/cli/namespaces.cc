// `berth namespaces`: ctr's namespace commands over the client library.
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/app.h"
#include "cli/run.h"
#include "cli/table.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

Result<berth::Client> Connect(App& app) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  return LibClient(session);
}

}  // namespace

void AddNamespacesCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("namespaces", "manage namespaces");
  group->alias("namespace");
  group->alias("ns");
  group->require_subcommand(1);

  {
    auto* cmd = group->add_subcommand("create", "create a new namespace (it must be unique)");
    cmd->alias("c");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<name> [<key>=<value>...]");
    SetAction(cmd, [&app, args]() -> Status {
      if (args->empty() || (*args)[0].empty()) return InvalidArgument("please specify a namespace");
      BERTH_ASSIGN_OR_RETURN(berth::Client client, Connect(app));
      return client.CreateNamespace((*args)[0], LabelArgs(*args, 1));
    });
  }
  {
    auto* cmd =
        group->add_subcommand("label", "set and clear labels for a namespace (empty value clears)");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<name> [<key>=<value>...]");
    SetAction(cmd, [&app, args]() -> Status {
      if (args->empty() || (*args)[0].empty()) return InvalidArgument("please specify a namespace");
      BERTH_ASSIGN_OR_RETURN(berth::Client client, Connect(app));
      for (const auto& [k, v] : LabelArgs(*args, 1)) {
        BERTH_TRY(client.SetNamespaceLabel((*args)[0], k, v));
      }
      return Ok();
    });
  }
  {
    auto* cmd = group->add_subcommand("list", "list namespaces");
    cmd->alias("ls");
    auto quiet = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    cmd->add_flag("-q,--quiet", *quiet, "print only the namespace name");
    AddFormatFlag(cmd, format);
    SetAction(cmd, [&app, quiet, format]() -> Status {
      BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(*format));
      BERTH_ASSIGN_OR_RETURN(berth::Client client, Connect(app));
      BERTH_ASSIGN_OR_RETURN(auto namespaces, client.Namespaces());
      if (*quiet) {
        for (const auto& ns : namespaces) fmt::print("{}\n", ns.name);
        return Ok();
      }
      Table table({{"NAME", "name"}, {"LABELS", "labels"}}, {});
      for (const auto& ns : namespaces) table.Add({ns.name, LabelsCell(ns.labels, "")});
      fmt::print("{}", table.Render(output));
      return Ok();
    });
  }
  {
    auto* cmd =
        group->add_subcommand("remove", "remove one or more namespaces (they must be empty)");
    cmd->alias("rm");
    auto args = std::make_shared<std::vector<std::string>>();
    auto cgroup = std::make_shared<bool>(false);
    cmd->add_option("names", *args, "<name> [<name>...]");
    cmd->add_flag("-c,--cgroup", *cgroup, "delete the namespace's cgroup");
    SetAction(cmd, [&app, args]() -> Status {
      BERTH_ASSIGN_OR_RETURN(berth::Client client, Connect(app));
      std::optional<Error> first;
      for (const auto& name : *args) {
        if (Status st = client.DeleteNamespace(name); !st) {
          Error err = std::move(st).error();
          if (!err.Is(Errc::kNotFound)) {
            std::fprintf(stderr, "berth: unable to delete %s: %s\n", name.c_str(),
                         err.ToString().c_str());
            if (!first) first = std::move(err).Wrap("unable to delete " + name);
            continue;
          }
        }
        fmt::print("{}\n", name);
      }
      if (first) return *first;
      return Ok();
    });
  }
}

}  // namespace berth::cli
