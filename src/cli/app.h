#pragma once
// Shared state of the berth CLI: global flags and the connection to berthd.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "client/session.h"
#include "common/errdefs.h"

namespace berth::cli {

inline constexpr const char* kDefaultAddress = "/run/berth/berth.sock";

struct GlobalFlags {
  std::string address = kDefaultAddress;
  std::string ns = "default";
  std::string timeout = "0s";
  std::string connect_timeout = "0s";
  bool debug = false;
};

// Parses Go duration text ("10s", "1m30s", "500ms", "0").
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);

class App {
 public:
  explicit App(GlobalFlags& flags) : flags_(flags) {}

  // Connects (once) to berthd; Unavailable naming the address if it does not answer in time.
  Result<std::shared_ptr<grpc::Channel>> Channel();
  // A context carrying the namespace header and the --timeout deadline.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // The connection with the namespace and --timeout of the flags.
  Result<client::Session> Session();
  const GlobalFlags& Flags() const { return flags_; }

 private:
  GlobalFlags& flags_;
  std::shared_ptr<grpc::Channel> channel_;
};

using client::FromGrpc;
using client::Session;

// `k=v` args into labels, as ctr's ObjectWithLabelArgs: first arg is the object, rest labels.
std::map<std::string, std::string> LabelArgs(const std::vector<std::string>& args, size_t from);

// For a command whose flags end at its first argument (prefix_command, as ctr's SkipArgReorder):
// CLI11 hands an unknown flag over as that argument, so `run -x busybox` would take "-x" for the
// image. Throws the usage error ctr's flag package gives ("flag provided but not defined: -x").
void RequireKnownFlags(const std::vector<std::string>& args);

// Each command group adds itself to the app; its callbacks return a Status.
using Action = std::function<Status()>;
// Wraps an action so its error is printed as "berth: <message>" and the exit code is 1.
void SetAction(CLI::App* cmd, Action action);

void AddVersionCommand(CLI::App& root, App& app);
void AddNamespacesCommand(CLI::App& root, App& app);
void AddPluginsCommand(CLI::App& root, App& app);
void AddContentCommand(CLI::App& root, App& app);
void AddImagesCommand(CLI::App& root, App& app);
void AddLeasesCommand(CLI::App& root, App& app);
void AddEventsCommand(CLI::App& root, App& app);
void AddSnapshotsCommand(CLI::App& root, App& app);
// `images mount` and `images unmount` (images_mount.cc), added to the images group.
void AddImagesMountCommands(CLI::App* images, App& app);
// `images import` and `images export` (images_archive.cc), added to the images group.
void AddImagesArchiveCommands(CLI::App* images, App& app);
// `images pull/push` and `content fetch` (images_pull.cc).
void AddImagesPullCommands(CLI::App* images, App& app);
void AddContentFetchCommands(CLI::App* content, App& app);

}  // namespace berth::cli
