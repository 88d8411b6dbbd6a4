#include "cli/app.h"

#include <cstdio>

#include <fmt/format.h>

namespace berth::cli {

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  if (text == "0") return std::chrono::nanoseconds(0);
  auto bad = [&] {
    return InvalidArgument(fmt::format("invalid duration {:?} (use e.g. 10s, 1m30s, 500ms)", text));
  };
  if (text.empty()) return bad();
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (start == i) return bad();
    double value = std::stod(std::string(text.substr(start, i - start)));
    size_t ustart = i;
    while (i < text.size() && !(text[i] >= '0' && text[i] <= '9') && text[i] != '.') ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    double scale;
    if (unit == "ns")
      scale = 1;
    else if (unit == "us" || unit == "µs")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1e6;
    else if (unit == "s")
      scale = 1e9;
    else if (unit == "m")
      scale = 60e9;
    else if (unit == "h")
      scale = 3600e9;
    else
      return bad();
    total += value * scale;
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

Result<std::shared_ptr<grpc::Channel>> App::Channel() {
  if (channel_) return channel_;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  auto channel =
      grpc::CreateCustomChannel("unix:" + flags_.address, grpc::InsecureChannelCredentials(), args);
  BERTH_ASSIGN_OR_RETURN(auto connect_timeout, ParseDuration(flags_.connect_timeout));
  if (connect_timeout.count() == 0) connect_timeout = std::chrono::seconds(10);
  auto deadline = std::chrono::system_clock::now() + connect_timeout;
  if (!channel->WaitForConnected(deadline)) {
    return Unavailable(
        fmt::format("failed to dial {:?}: context deadline exceeded (is berthd running there?)",
                    flags_.address));
  }
  channel_ = channel;
  return channel_;
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

Error FromGrpc(const grpc::Status& status) {
  return ErrorFromGrpc(static_cast<int>(status.error_code()), status.error_message());
}

std::map<std::string, std::string> LabelArgs(const std::vector<std::string>& args, size_t from) {
  std::map<std::string, std::string> labels;
  for (size_t i = from; i < args.size(); ++i) {
    const auto& a = args[i];
    auto eq = a.find('=');
    if (eq == std::string::npos) {
      labels[a] = "";
    } else {
      labels[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
  return labels;
}

void SetAction(CLI::App* cmd, Action action) {
  cmd->callback([action = std::move(action)] {
    Status s = action();
    if (!s) {
      std::fprintf(stderr, "berth: %s\n", s.error().ToString().c_str());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace berth::cli
