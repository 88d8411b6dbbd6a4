#include "client/session.h"

#include <fmt/format.h>

namespace berth::client {

Result<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                            std::chrono::nanoseconds connect_timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  auto channel =
      grpc::CreateCustomChannel("unix:" + address, grpc::InsecureChannelCredentials(), args);
  if (connect_timeout.count() == 0) connect_timeout = std::chrono::seconds(10);
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(connect_timeout);
  if (!channel->WaitForConnected(deadline)) {
    return Unavailable(fmt::format(
        "failed to dial {:?}: context deadline exceeded (is berthd running there?)", address));
  }
  return channel;
}

Error FromGrpc(const grpc::Status& status) {
  return ErrorFromGrpc(static_cast<int>(status.error_code()), status.error_message());
}

std::unique_ptr<grpc::ClientContext> Session::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", ns_);
  if (timeout_.count() > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout_));
  }
  if (!lease_.empty()) ctx->AddMetadata("containerd-lease", lease_);
  return ctx;
}

}  // namespace berth::client
