// containerd.services.events.v1.Events over the exchange (containerd's services/events).
#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>

#include <limits>
#include <mutex>

#include "events/exchange.h"
#include "events/plugin.h"
#include "services/events_hook.h"
#include "services/plugins.h"

namespace berth::services {
namespace {

namespace api = containerd::services::events::v1;

void EnvelopeToProto(const events::Envelope& env, api::Envelope* out) {
  SetTimestamp(env.timestamp, out->mutable_timestamp());
  out->set_namespace_(env.ns);
  out->set_topic(env.topic);
  *out->mutable_event() = env.event;
}

// One Subscribe stream: writes the subscription's envelopes one at a time until the client
// cancels, the subscription ends (too slow, exchange shut down) or the server shuts down (which
// cancels the call). Never blocks a gRPC thread: the exchange's on_ready wakes it.
//
// Threads: Pump() runs from publishers (on_ready) and from gRPC reactions; mu_ serializes the
// decision to write or finish, and the StartWrite/Finish calls are made after unlocking, as the
// last thing that touches `this` (OnDone may delete it right after, on another thread).
class SubscribeReactor final : public grpc::ServerWriteReactor<api::Envelope> {
 public:
  SubscribeReactor(events::Exchange& exchange, const api::SubscribeRequest& req) {
    std::vector<std::string> filters(req.filters().begin(), req.filters().end());
    std::unique_lock lock(mu_);
    auto sub = exchange.Subscribe(filters, [this] { Pump(); });
    if (!sub) {
      finished_ = true;
      lock.unlock();
      Finish(ToGrpc(sub.error()));
      return;
    }
    sub_ = std::move(*sub);
    // Headers go out now, so a client can tell the subscription is in place.
    writing_ = true;
    lock.unlock();
    StartSendInitialMetadata();
  }

  void OnSendInitialMetadataDone(bool ok) override { OpDone(ok); }
  void OnWriteDone(bool ok) override { OpDone(ok); }

  void OnCancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    Pump();
  }

  void OnDone() override {
    if (sub_) sub_->Close();  // after this, on_ready (Pump) is not running and never will
    delete this;
  }

 private:
  void OpDone(bool ok) {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;  // the stream is broken: nothing more can be written
    }
    Pump();
  }

  void Pump() {
    std::unique_lock lock(mu_);
    if (finished_ || writing_) return;
    if (cancelled_) {
      finished_ = true;
      lock.unlock();
      Finish(grpc::Status::CANCELLED);
      return;
    }
    auto next = sub_->TryNext();
    if (!next) {
      finished_ = true;
      lock.unlock();
      Finish(ToGrpc(next.error()));
      return;
    }
    if (!next->has_value()) return;
    out_.Clear();
    EnvelopeToProto(**next, &out_);
    writing_ = true;
    lock.unlock();
    StartWrite(&out_);
  }

  std::mutex mu_;
  std::unique_ptr<events::Subscription> sub_;  // set once, before any Pump() gets past mu_
  api::Envelope out_;                          // the message being written (writing_)
  bool writing_ = false;                       // a write or the initial metadata is in flight
  bool cancelled_ = false;
  bool finished_ = false;  // Finish() called (or about to be)
};

class EventsService final : public api::Events::CallbackService {
 public:
  explicit EventsService(events::Exchange& exchange) : exchange_(exchange) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* rpc,
                                    const api::PublishRequest* req,
                                    google::protobuf::Empty* /*resp*/) override {
    return Unary(rpc, [&]() -> Status {
      // The exchange requires the namespace, with containerd's "failed publishing event" text.
      BERTH_ASSIGN_OR_RETURN(Context ctx, ContextFrom(rpc));
      // containerd dereferences a missing event (and crashes); refuse it instead.
      if (!req->has_event()) return InvalidArgument("event must be set");
      return exchange_.Publish(ctx, req->topic(), req->event());
    });
  }

  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* rpc,
                                    const api::ForwardRequest* req,
                                    google::protobuf::Empty* /*resp*/) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_TRY(ContextFrom(rpc));
      return ForwardEnvelope(exchange_, *req);
    });
  }

  grpc::ServerWriteReactor<api::Envelope>* Subscribe(grpc::CallbackServerContext* rpc,
                                                     const api::SubscribeRequest* req) override {
    // Namespace-free: events of every namespace unless filtered. A malformed header still fails.
    if (auto ctx = ContextFrom(rpc); !ctx) {
      return new FailedWrite(ToGrpc(ctx.error()));
    }
    return new SubscribeReactor(exchange_, *req);
  }

 private:
  // A stream that ends at once with an error.
  class FailedWrite final : public grpc::ServerWriteReactor<api::Envelope> {
   public:
    explicit FailedWrite(grpc::Status status) { Finish(std::move(status)); }
    void OnDone() override { delete this; }
  };

  events::Exchange& exchange_;
};

}  // namespace

void RegisterEvents(plugin::Registry& registry) {
  events::RegisterPlugins(registry);
  registry.Add(
      {.type = plugin::kGrpc,
       .id = "events",
       .requires_types = {plugin::kEvent},
       .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
         BERTH_ASSIGN_OR_RETURN(auto* exchange, ic.GetSingle<events::Exchange>(plugin::kEvent));
         return plugin::Instance::Of<grpc::Service>(std::make_shared<EventsService>(*exchange));
       }});
}

}  // namespace berth::services
