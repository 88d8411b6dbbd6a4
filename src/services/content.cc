// containerd.services.content.v1.Content over the namespaced content store.
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>

#include <fmt/format.h>

#include "metadata/content_store.h"
#include "services/content_write.h"
#include "services/events_hook.h"
#include "services/plugins.h"
#include "services/pool.h"
#include "services/utf8_guard.h"

namespace berth::services {
namespace {

namespace api = containerd::services::content::v1;

constexpr size_t kReadChunk = 1 << 20;  // well under the 16 MiB message limit
constexpr size_t kListBatch = 100;

void ToProto(const content::Info& in, api::Info* out) {
  out->set_digest(in.digest.String());
  out->set_size(in.size);
  SetTimestamp(in.created_at, out->mutable_created_at());
  SetTimestamp(in.updated_at, out->mutable_updated_at());
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
}

void ToProto(const content::Status& in, api::Status* out) {
  SetTimestamp(in.started_at, out->mutable_started_at());
  SetTimestamp(in.updated_at, out->mutable_updated_at());
  out->set_ref(in.ref);
  out->set_offset(in.offset);
  out->set_total(in.total);
  out->set_expected(in.expected.String());
}

Result<Digest> ParseDigest(const std::string& text) { return Digest::Parse(text); }

// Read: chunks read on the pool, one write in flight.
class ReadReactor final : public grpc::ServerWriteReactor<api::ReadContentResponse> {
 public:
  ReadReactor(std::unique_ptr<content::ReaderAt> reader, int64_t offset, int64_t end)
      : reader_(std::move(reader)), offset_(offset), end_(end) {
    PostBlocking([this] { ReadNext(); });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    PostBlocking([this] { ReadNext(); });
  }
  void OnDone() override { delete this; }

 private:
  void ReadNext() {
    if (offset_ >= end_) {
      Finish(grpc::Status::OK);
      return;
    }
    size_t want = static_cast<size_t>(std::min<int64_t>(kReadChunk, end_ - offset_));
    std::string* data = msg_.mutable_data();
    data->resize(want);
    auto n = reader_->ReadAt(data->data(), want, offset_);
    if (!n) {
      Finish(ToGrpc(n.error()));
      return;
    }
    if (*n == 0) {
      Finish(grpc::Status::OK);
      return;
    }
    data->resize(*n);
    msg_.set_offset(offset_);
    offset_ += static_cast<int64_t>(*n);
    StartWrite(&msg_);
  }
  std::unique_ptr<content::ReaderAt> reader_;
  int64_t offset_;
  int64_t end_;
  api::ReadContentResponse msg_;
};

// Write: the STAT/WRITE/COMMIT protocol; each request is handled on the pool, then answered,
// then the next one is read.
class WriteReactor final
    : public grpc::ServerBidiReactor<api::WriteContentRequest, api::WriteContentResponse> {
 public:
  WriteReactor(content::Store& store, const grpc::CallbackServerContext* rpc, Result<Context> ctx)
      : rpc_(rpc) {
    if (!ctx) {
      Finish(ToGrpc(ctx.error()));
      return;
    }
    session_.emplace(store, std::move(*ctx));
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // client half-closed: the ingest stays and can be resumed
      PostBlocking([this] {
        session_->Close();
        Finish(grpc::Status::OK);
      });
      return;
    }
    PostBlocking([this] {
      berth::Status s = Ok();
      if (auto bad = InvalidUtf8Error(rpc_)) {
        s = std::move(*bad);
      } else {
        s = session_->Step(req_, &resp_);
      }
      if (!s) {
        session_->Close();
        Finish(ToGrpc(s.error()));
        return;
      }
      StartWrite(&resp_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      PostBlocking([this] {
        session_->Close();
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      });
      return;
    }
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  const grpc::CallbackServerContext* rpc_;
  std::optional<WriteSession> session_;
  api::WriteContentRequest req_;
  api::WriteContentResponse resp_;
};

class ContentService final : public api::Content::CallbackService {
 public:
  ContentService(content::Store& store, EventsHook events)
      : store_(store), events_(std::move(events)) {}

  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* rpc, const api::InfoRequest* req,
                                 api::InfoResponse* resp) override {
    return Unary(rpc, [&]() -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(Digest d, ParseDigest(req->digest()));
      BERTH_ASSIGN_OR_RETURN(content::Info info, store_.Info(ctx, d));
      ToProto(info, resp->mutable_info());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc, const api::UpdateRequest* req,
                                   api::UpdateResponse* resp) override {
    return Unary(rpc, [&]() -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(Digest d, ParseDigest(req->info().digest()));
      content::Info in{.digest = d, .labels = ToMap(req->info().labels())};
      std::vector<std::string> paths(req->update_mask().paths().begin(),
                                     req->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(content::Info out, store_.Update(ctx, in, paths));
      ToProto(out, resp->mutable_info());
      return Ok();
    });
  }

  grpc::ServerWriteReactor<api::ListContentResponse>* List(
      grpc::CallbackServerContext* rpc, const api::ListContentRequest* req) override {
    auto* w = new QueueWriter<api::ListContentResponse>();
    auto ctx = NamespacedContextFrom(rpc);
    std::vector<std::string> filters(req->filters().begin(), req->filters().end());
    PostBlocking([this, w, ctx = std::move(ctx), filters = std::move(filters)] {
      w->Start([&]() -> Result<std::vector<api::ListContentResponse>> {
        BERTH_TRY(ctx);
        std::vector<api::ListContentResponse> out;
        BERTH_TRY(store_.Walk(
            *ctx,
            [&](const content::Info& info) -> berth::Status {
              if (out.empty() || out.back().info_size() >= static_cast<int>(kListBatch)) {
                out.emplace_back();
              }
              ToProto(info, out.back().add_info());
              return Ok();
            },
            filters));
        return out;
      }());
    });
    return w;
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* rpc,
                                   const api::DeleteContentRequest* req,
                                   google::protobuf::Empty*) override {
    return Unary(rpc, [&]() -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(Digest d, ParseDigest(req->digest()));
      BERTH_TRY(store_.Delete(ctx, d));
      containerd::events::ContentDelete ev;
      ev.set_digest(d.String());
      events_.Publish(ctx, "/content/delete", ev);
      return Ok();
    });
  }

  grpc::ServerWriteReactor<api::ReadContentResponse>* Read(
      grpc::CallbackServerContext* rpc, const api::ReadContentRequest* req) override {
    auto fail = [](const Error& e) {
      auto* w = new QueueWriter<api::ReadContentResponse>();
      w->Start(e);
      return w;
    };
    auto ctx = NamespacedContextFrom(rpc);
    if (!ctx) return fail(ctx.error());
    auto d = ParseDigest(req->digest());
    if (!d) return fail(d.error());
    auto info = store_.Info(*ctx, *d);
    if (!info) return fail(info.error());
    auto reader = store_.ReaderAt(*ctx, {.digest = *d, .size = info->size});
    if (!reader) return fail(reader.error());
    int64_t size = info->size;
    int64_t offset = std::max<int64_t>(req->offset(), 0);
    if (offset > size) {
      return fail(OutOfRange(fmt::format("read offset {} is past the end of content {} ({} bytes)",
                                         offset, d->String(), size)));
    }
    int64_t end = size;
    // size - offset cannot overflow (0 <= offset <= size); offset + req->size() could.
    if (req->size() > 0 && req->size() < size - offset) end = offset + req->size();
    return new ReadReactor(std::move(*reader), offset, end);
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* rpc, const api::StatusRequest* req,
                                   api::StatusResponse* resp) override {
    return Unary(rpc, [&]() -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(content::Status st, store_.Status(ctx, req->ref()));
      ToProto(st, resp->mutable_status());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* ListStatuses(grpc::CallbackServerContext* rpc,
                                         const api::ListStatusesRequest* req,
                                         api::ListStatusesResponse* resp) override {
    return Unary(rpc, [&]() -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      std::vector<std::string> filters(req->filters().begin(), req->filters().end());
      BERTH_ASSIGN_OR_RETURN(auto statuses, store_.ListStatuses(ctx, filters));
      for (const auto& st : statuses) ToProto(st, resp->add_statuses());
      return Ok();
    });
  }

  grpc::ServerBidiReactor<api::WriteContentRequest, api::WriteContentResponse>* Write(
      grpc::CallbackServerContext* rpc) override {
    return new WriteReactor(store_, rpc, NamespacedContextFrom(rpc));
  }

  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* rpc, const api::AbortRequest* req,
                                  google::protobuf::Empty*) override {
    auto ctx = NamespacedContextFrom(rpc);
    std::string ref = req->ref();
    return OnPool(rpc, [this, ctx = std::move(ctx), ref]() -> berth::Status {
      BERTH_TRY(ctx);
      return store_.Abort(*ctx, ref);
    });
  }

 private:
  content::Store& store_;
  EventsHook events_;
};

}  // namespace

void RegisterContent(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "content-service",
                .requires_types = {plugin::kMetadata},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  // Registered as the content::Store interface: the differ and others find the
                  // namespaced store by that type.
                  std::shared_ptr<content::Store> store =
                      std::make_shared<metadata::ContentStore>(*db);
                  return plugin::Instance::Of<content::Store>(std::move(store));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "content",
                .requires_types = {plugin::kService},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* store,
                                         ic.GetSingle<content::Store>(plugin::kService));
                  return plugin::Instance::Of<grpc::Service>(
                      std::make_shared<ContentService>(*store, EventsHook::From(ic)));
                }});
}

}  // namespace berth::services
