#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/app.h"
#include "cli/table.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

namespace api = containerd::services::namespaces::v1;

Result<std::unique_ptr<api::Namespaces::Stub>> Stub(App& app) {
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  return api::Namespaces::NewStub(channel);
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
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      api::CreateNamespaceRequest req;
      req.mutable_namespace_()->set_name((*args)[0]);
      for (const auto& [k, v] : LabelArgs(*args, 1)) {
        (*req.mutable_namespace_()->mutable_labels())[k] = v;
      }
      api::CreateNamespaceResponse resp;
      auto ctx = app.NewContext();
      if (auto st = stub->Create(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
      return Ok();
    });
  }
  {
    auto* cmd =
        group->add_subcommand("label", "set and clear labels for a namespace (empty value clears)");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<name> [<key>=<value>...]");
    SetAction(cmd, [&app, args]() -> Status {
      if (args->empty() || (*args)[0].empty()) return InvalidArgument("please specify a namespace");
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      for (const auto& [k, v] : LabelArgs(*args, 1)) {
        api::UpdateNamespaceRequest req;
        req.mutable_namespace_()->set_name((*args)[0]);
        (*req.mutable_namespace_()->mutable_labels())[k] = v;
        req.mutable_update_mask()->add_paths("labels." + k);
        api::UpdateNamespaceResponse resp;
        auto ctx = app.NewContext();
        if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
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
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      api::ListNamespacesResponse resp;
      auto ctx = app.NewContext();
      if (auto st = stub->List(ctx.get(), {}, &resp); !st.ok()) return FromGrpc(st);
      if (*quiet) {
        for (const auto& ns : resp.namespaces()) fmt::print("{}\n", ns.name());
        return Ok();
      }
      Table table({{"NAME", "name"}, {"LABELS", "labels"}}, {});
      for (const auto& ns : resp.namespaces()) {
        table.Add({ns.name(), LabelsCell({ns.labels().begin(), ns.labels().end()}, "")});
      }
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
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      std::optional<Error> first;
      for (const auto& name : *args) {
        api::DeleteNamespaceRequest req;
        req.set_name(name);
        google::protobuf::Empty resp;
        auto ctx = app.NewContext();
        if (auto st = stub->Delete(ctx.get(), req, &resp); !st.ok()) {
          Error err = FromGrpc(st);
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
