#pragma once
// What `images pull/push`, `content fetch` and `run --pull` share: ctr's registry flags and the
// pull with its progress display.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "client/transfer.h"
#include "common/errdefs.h"

namespace berth::cli {

// ctr's RegistryFlags.
struct RegistryFlags {
  bool skip_verify = false;
  bool plain_http = false;
  std::string user;  // user[:password]
  bool refresh = false;
  std::string hosts_dir;
  std::string tlscacert, tlscert, tlskey;
  bool http_dump = false;
  bool http_trace = false;
};
void AddRegistryFlags(CLI::App* cmd, RegistryFlags& flags);
// The resolver options of the flags: --hosts-dir defaults to /etc/berth/certs.d when it exists;
// -u without a password reads it from stdin when stdin is not a terminal (no prompt).
Result<remotes::ResolverOptions> ResolverOptionsFrom(const RegistryFlags& flags);

// A user's reference as berth accepts it: normalized ("busybox" ->
// "docker.io/library/busybox:latest"); ctr itself requires the full form.
Result<std::string> NormalizeRef(std::string_view ref);

// Pulls `ref` with a progress display on stdout (live on a terminal), then prints ctr's
// "unpacking <platform> <digest>..." / "done: <elapsed>" lines; with --debug the pull timings
// line on stderr.
Result<client::PullResult> PullWithProgress(App& app, const Session& session,
                                            const std::string& ref,
                                            const client::PullOptions& options,
                                            bool print_chain_id = false);

// `images pull`, `images push` (into the images group), `content fetch` (into content).
void AddImagesPullCommands(CLI::App* images, App& app);
void AddContentFetchCommands(CLI::App* content, App& app);

}  // namespace berth::cli
