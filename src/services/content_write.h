#pragma once
// The state machine of one Content.Write stream (containerd's services/content Write): the first
// message names the ingest (ref, total, expected); later ones stat it, write at its offset or
// commit it. Transport-free, so the gRPC reactor and the fuzzer drive the same code.
#include <github.com/containerd/containerd/api/services/content/v1/content.pb.h>

#include <memory>
#include <string>

#include "common/context.h"
#include "common/digest.h"
#include "common/errdefs.h"
#include "content/content.h"

namespace berth::services {

class WriteSession {
 public:
  WriteSession(content::Store& store, Context ctx) : store_(store), ctx_(std::move(ctx)) {}
  ~WriteSession() { Close(); }
  WriteSession(const WriteSession&) = delete;
  WriteSession& operator=(const WriteSession&) = delete;

  // Handles one request; on success `resp` is the answer to send. An error ends the stream (the
  // caller Close()s first).
  Status Step(const containerd::services::content::v1::WriteContentRequest& req,
              containerd::services::content::v1::WriteContentResponse* resp);
  // Releases the ingest's writer (the ingest stays and can be resumed).
  void Close();

 private:
  content::Store& store_;
  Context ctx_;
  std::unique_ptr<content::Writer> writer_;
  std::string ref_;
  int64_t total_ = 0;
  Digest expected_;
};

}  // namespace berth::services
