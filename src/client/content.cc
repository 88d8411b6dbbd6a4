#include "client/content.h"

#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>

#include <chrono>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "client/remote_stores.h"

namespace berth::client {
namespace {

namespace content_api = containerd::services::content::v1;

constexpr size_t kWriteChunk = 1 << 20;

}  // namespace

Result<BlobInfo> StatContent(const Session& session, const std::string& digest) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::InfoRequest req;
  req.set_digest(digest);
  content_api::InfoResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Info(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  BlobInfo info;
  info.size = resp.info().size();
  for (const auto& [k, v] : resp.info().labels()) info.labels[k] = v;
  return info;
}

Status UpdateContentLabels(const Session& session, const std::string& digest,
                           const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return Ok();
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::UpdateRequest req;
  req.mutable_info()->set_digest(digest);
  for (const auto& [k, v] : labels) {
    if (!v.empty()) (*req.mutable_info()->mutable_labels())[k] = v;
    req.mutable_update_mask()->add_paths("labels." + k);
  }
  content_api::UpdateResponse resp;
  auto ctx = session.Context();
  if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) {
    return FromGrpc(st).Wrap(fmt::format("update labels of {}", digest));
  }
  return Ok();
}

// The remote writer of content/proxy: one Write stream, each request answered before the next.
struct ContentWriter::Impl {
  explicit Impl(const Session& s) : session(s) {}
  Session session;
  std::string ref;
  int64_t total = 0;
  std::string expected;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<
      grpc::ClientReaderWriter<content_api::WriteContentRequest, content_api::WriteContentResponse>>
      stream;
  int64_t offset = 0;  // bytes the daemon holds
  std::string buffer;  // bytes not sent yet
  bool closed = false;

  // Sends one request and reads its answer; on a broken stream returns the call's status.
  Result<content_api::WriteContentResponse> Send(const content_api::WriteContentRequest& req) {
    if (closed) return FailedPrecondition(fmt::format("ref {:?}: writer is closed", ref));
    content_api::WriteContentResponse resp;
    if (stream->Write(req) && stream->Read(&resp)) return resp;
    return Close();
  }

  // Half-closes and collects the call's status (the ingest stays for a later resume).
  Error Close() {
    closed = true;
    stream->WritesDone();
    grpc::Status st = stream->Finish();
    if (st.ok()) return Unknown(fmt::format("ref {:?}: write stream ended early", ref));
    return FromGrpc(st);
  }

  Status Flush() {
    if (buffer.empty()) return Ok();
    content_api::WriteContentRequest req;
    req.set_action(content_api::WRITE);
    req.set_offset(offset);
    req.set_data(std::move(buffer));
    buffer.clear();
    auto resp = Send(req);
    if (!resp) return std::move(resp).error().Wrap(fmt::format("write {}", ref));
    const int64_t want = offset + static_cast<int64_t>(req.data().size());
    if (resp->offset() != want) {
      return Unknown(fmt::format("write {}: short write: offset {} after, want {}", ref,
                                 resp->offset(), want));
    }
    offset = resp->offset();
    return Ok();
  }
};

ContentWriter::ContentWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ContentWriter::~ContentWriter() {
  if (impl_ && !impl_->closed) {
    impl_->closed = true;
    impl_->stream->WritesDone();
    (void)impl_->stream->Finish();
  }
}

Result<std::unique_ptr<ContentWriter>> ContentWriter::Open(const Session& session,
                                                           const std::string& ref, int64_t total,
                                                           const std::string& expected) {
  // content.OpenWriter: a ref locked by another writer (Unavailable "... locked ...") is retried
  // with a random, doubling wait (at most ~2 s each), here for at most 5 minutes.
  auto open_once = [&]() -> Result<std::unique_ptr<Impl>> {
    auto impl = std::make_unique<Impl>(session);
    impl->ref = ref;
    impl->total = total;
    impl->expected = expected;
    impl->ctx = session.Context();
    auto stub = content_api::Content::NewStub(session.Channel());
    impl->stream = stub->Write(impl->ctx.get());
    content_api::WriteContentRequest req;
    req.set_action(content_api::STAT);
    req.set_ref(ref);
    req.set_total(total);
    req.set_expected(expected);
    auto resp = impl->Send(req);
    if (!resp) return std::move(resp).error();
    impl->offset = resp->offset();
    if (total > 0 && impl->offset > total) {
      // A stale ingest longer than the blob: start over.
      impl->offset = 0;
    }
    return impl;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  std::mt19937 rng(std::random_device{}());
  int retry = 16;
  for (;;) {
    auto impl = open_once();
    if (impl) return std::unique_ptr<ContentWriter>(new ContentWriter(std::move(impl).value()));
    if (impl.error().Is(Errc::kAlreadyExists)) return std::move(impl).error();
    const bool locked = impl.error().Is(Errc::kUnavailable) &&
                        impl.error().What().find("locked") != std::string::npos;
    if (!locked || std::chrono::steady_clock::now() > give_up) {
      return std::move(impl).error().Wrap(fmt::format("open content writer {}", ref));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % static_cast<unsigned>(retry)));
    if (retry < 2048) retry <<= 1;
  }
}

int64_t ContentWriter::Offset() const {
  return impl_->offset + static_cast<int64_t>(impl_->buffer.size());
}

Status ContentWriter::Write(std::string_view data) {
  while (!data.empty()) {
    size_t room = kWriteChunk - impl_->buffer.size();
    size_t n = std::min(room, data.size());
    impl_->buffer.append(data.substr(0, n));
    data.remove_prefix(n);
    if (impl_->buffer.size() >= kWriteChunk) BERTH_TRY(impl_->Flush());
  }
  return Ok();
}

Status ContentWriter::Commit(const std::map<std::string, std::string>& labels) {
  content_api::WriteContentRequest req;
  req.set_action(content_api::COMMIT);
  req.set_offset(impl_->offset);
  req.set_total(impl_->total);
  req.set_expected(impl_->expected);
  if (!impl_->buffer.empty()) {
    req.set_data(std::move(impl_->buffer));
    impl_->buffer.clear();
  }
  for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
  auto resp = impl_->Send(req);
  if (!resp) {
    if (resp.error().Is(Errc::kAlreadyExists)) return Ok();
    return std::move(resp).error().Wrap(fmt::format("commit {}", impl_->ref));
  }
  impl_->offset = resp->offset();
  impl_->closed = true;
  impl_->stream->WritesDone();
  grpc::Status st = impl_->stream->Finish();
  if (impl_->total > 0 && resp->offset() != impl_->total) {
    return Unknown(fmt::format("commit {}: unexpected size: {} != {}", impl_->ref, resp->offset(),
                               impl_->total));
  }
  if (!impl_->expected.empty() && resp->digest() != impl_->expected) {
    return Unknown(fmt::format("commit {}: unexpected digest: {} != {}", impl_->ref, resp->digest(),
                               impl_->expected));
  }
  if (!st.ok()) return FromGrpc(st).Wrap(fmt::format("commit {}", impl_->ref));
  return Ok();
}

Status ContentWriter::Abort() {
  if (!impl_->closed) {
    impl_->closed = true;
    impl_->ctx->TryCancel();
    (void)impl_->stream->Finish();
  }
  impl_->buffer.clear();
  auto stub = content_api::Content::NewStub(impl_->session.Channel());
  content_api::AbortRequest req;
  req.set_ref(impl_->ref);
  google::protobuf::Empty resp;
  auto ctx = impl_->session.Context();
  if (auto st = stub->Abort(ctx.get(), req, &resp); !st.ok()) {
    Error e = FromGrpc(st);
    if (e.Is(Errc::kNotFound)) return Ok();
    return std::move(e).Wrap(fmt::format("abort {}", impl_->ref));
  }
  return Ok();
}

Status WriteBlob(const Session& session, const std::string& ref, const images::OciDescriptor& desc,
                 std::string_view data, const std::map<std::string, std::string>& labels) {
  RemoteStores stores(session);
  return transfer::WriteBlob(stores, StoresContext(session), ref, desc, data, labels);
}

}  // namespace berth::client
