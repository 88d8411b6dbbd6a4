#include "cli/app.h"

#include <cstdio>

#include <fmt/format.h>

#include "cli/suggest.h"
#include "common/timeutil.h"

namespace berth::cli {

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  return ParseGoDuration(text);
}

Result<std::shared_ptr<grpc::Channel>> App::Channel() {
  if (channel_) return channel_;
  BERTH_ASSIGN_OR_RETURN(auto connect_timeout, ParseDuration(flags_.connect_timeout));
  BERTH_ASSIGN_OR_RETURN(channel_, client::Dial(flags_.address, connect_timeout));
  return channel_;
}

Result<client::Session> App::Session() {
  BERTH_ASSIGN_OR_RETURN(auto channel, Channel());
  auto timeout = ParseDuration(flags_.timeout);
  return client::Session(std::move(channel), flags_.ns,
                         timeout ? *timeout : std::chrono::nanoseconds{});
}

std::unique_ptr<grpc::ClientContext> App::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", flags_.ns);
  auto timeout = ParseDuration(flags_.timeout);
  if (timeout && timeout->count() > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() + *timeout);
  }
  return ctx;
}

std::map<std::string, std::string> LabelArgs(const std::vector<std::string>& args, size_t from) {
  std::map<std::string, std::string> labels;
  for (size_t i = from; i < args.size(); ++i) {
    const auto& a = args[i];
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      labels[a] = "true";  // as ctr's LabelArgs
    } else {
      labels[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
  return labels;
}

void RequireKnownFlags(const std::vector<std::string>& args) {
  if (!args.empty() && args[0].size() > 1 && args[0][0] == '-') {
    throw CLI::ValidationError(fmt::format("flag provided but not defined: {}", args[0]));
  }
}

void SetAction(CLI::App* cmd, Action action) {
  cmd->callback([action = std::move(action)] {
    Status s = action();
    if (!s) {
      std::fprintf(stderr, "berth: %s\n", CliMessage(s.error()).c_str());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace berth::cli
