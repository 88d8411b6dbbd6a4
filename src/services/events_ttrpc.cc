// containerd.services.events.ttrpc.v1.Events over ttrpc (containerd's services/events/ttrpc.go).
#include "services/events_ttrpc.h"

#include <github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h>
#include <google/protobuf/empty.pb.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "common/log.h"
#include "services/events_hook.h"
#include "ttrpc/ttrpc.h"

namespace berth::services {
namespace {

namespace api = containerd::services::events::ttrpc::v1;

constexpr std::string_view kService = "containerd.services.events.ttrpc.v1.Events";
}  // namespace

void RegisterTtrpcEvents(ttrpc::Server& server, events::Exchange& exchange) {
  server.RegisterUnary<api::ForwardRequest, google::protobuf::Empty>(
      std::string(kService), "Forward",
      [&exchange](const ttrpc::CallContext&,
                  const api::ForwardRequest& req) -> Result<google::protobuf::Empty> {
        // Never blocks: the exchange queues per subscriber.
        BERTH_TRY(ForwardEnvelope(exchange, req));
        return google::protobuf::Empty();
      });
}

struct TtrpcEndpoint::Impl {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(io)};
  std::unique_ptr<ttrpc::Server> server = std::make_unique<ttrpc::Server>(io);
  std::thread thread;
  bool stopped = false;
};

TtrpcEndpoint::TtrpcEndpoint(std::string address, std::unique_ptr<Impl> impl)
    : address_(std::move(address)), impl_(std::move(impl)) {}

Result<std::unique_ptr<TtrpcEndpoint>> TtrpcEndpoint::Start(const std::string& address,
                                                            events::Exchange& exchange) {
  auto impl = std::make_unique<Impl>();
  RegisterTtrpcEvents(*impl->server, exchange);
  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd listener, ttrpc::Server::Listen(address));
  BERTH_TRY(impl->server->Serve(std::move(listener)));
  impl->thread = std::thread([io = &impl->io] { io->run(); });
  log::L().With("address", address).Info("serving ttrpc...");
  return std::unique_ptr<TtrpcEndpoint>(new TtrpcEndpoint(address, std::move(impl)));
}

void TtrpcEndpoint::Shutdown() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  auto closed = std::make_shared<std::promise<void>>();
  auto future = closed->get_future();
  impl_->server->Shutdown([closed] { closed->set_value(); });
  if (future.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    log::L().With("address", address_).Warn("ttrpc: connections still busy at shutdown, closing");
  }
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->server.reset();  // io is not running: closes whatever is left
  if (::unlink(address_.c_str()) != 0 && errno != ENOENT) {
    log::L().With("address", address_).Warn("ttrpc: could not remove socket");
  }
}

TtrpcEndpoint::~TtrpcEndpoint() { Shutdown(); }

}  // namespace berth::services
