#pragma once
// Writing blobs into berthd's content store over the Content service (containerd's
// content.proxy writer): one Write stream per blob, resumable, committed with the expected
// size and digest so the daemon refuses bad bytes.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "client/session.h"
#include "common/errdefs.h"
#include "images/image.h"

namespace berth::client {

// Content.Info of `digest`: its size and labels; NotFound when absent.
struct BlobInfo {
  int64_t size = 0;
  std::map<std::string, std::string> labels;
};
Result<BlobInfo> StatContent(const Session& session, const std::string& digest);
// Content.Update of the given labels only ("labels.<key>" masks; an empty value removes one).
Status UpdateContentLabels(const Session& session, const std::string& digest,
                           const std::map<std::string, std::string>& labels);

class ContentWriter {
 public:
  // Opens the ingest `ref` (ctr's job refs: "layer-sha256:<hex>", ...) for a blob of `total`
  // bytes and `expected` digest. Offset() says how much an earlier, interrupted write of the
  // same ref already holds (resume from there). AlreadyExists when the blob is in the store.
  static Result<std::unique_ptr<ContentWriter>> Open(const Session& session, const std::string& ref,
                                                     int64_t total, const std::string& expected);
  ~ContentWriter();
  ContentWriter(const ContentWriter&) = delete;
  ContentWriter& operator=(const ContentWriter&) = delete;

  int64_t Offset() const;
  // Appends (buffered into ~1 MiB messages).
  Status Write(std::string_view data);
  // Commits with the size and digest given at Open; the daemon verifies both (a mismatch is
  // FailedPrecondition and nothing is committed). AlreadyExists is success.
  Status Commit(const std::map<std::string, std::string>& labels = {});
  // Drops the ingest (Content.Abort) — after a failed fetch that must not be resumed.
  Status Abort();

 private:
  struct Impl;
  explicit ContentWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes a whole in-memory blob (manifests, configs, index): Ok and nothing written when the
// store has it already, then sets `labels` on it either way (Content.Update).
Status WriteBlob(const Session& session, const std::string& ref, const images::OciDescriptor& desc,
                 std::string_view data, const std::map<std::string, std::string>& labels = {});

}  // namespace berth::client
