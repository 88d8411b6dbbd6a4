#pragma once
// The namespaced view of the content store (containerd's metadata/content.go). Blobs are stored
// once in the backend; a namespace sees a blob only through its record
// v1/<ns>/content/blob/<digest> (size, times, labels). Ingests are recorded under
// v1/<ns>/content/ingests/<ref> with their backend ref "<ns>/<seq>/<ref>", so refs of different
// namespaces never collide. With the "shared" policy, writing a blob another namespace already
// has commits without data: the writer reports offset = total = size and Commit only links it.
#include <memory>

#include "content/content.h"
#include "metadata/db.h"

namespace berth::metadata {

class ContentStore final : public content::Store {
 public:
  // `db.ContentBackend()` must be set.
  explicit ContentStore(Db& db);

  Result<content::Info> Info(const Context& ctx, const Digest& dgst) override;
  Result<content::Info> Update(const Context& ctx, const content::Info& info,
                               const std::vector<std::string>& fieldpaths) override;
  berth::Status Walk(const Context& ctx,
                     const std::function<berth::Status(const content::Info&)>& fn,
                     const std::vector<std::string>& filters) override;
  berth::Status Delete(const Context& ctx, const Digest& dgst) override;
  Result<std::unique_ptr<content::ReaderAt>> ReaderAt(const Context& ctx,
                                                      const Descriptor& desc) override;
  Result<content::Status> Status(const Context& ctx, const std::string& ref) override;
  Result<std::vector<content::Status>> ListStatuses(
      const Context& ctx, const std::vector<std::string>& filters) override;
  berth::Status Abort(const Context& ctx, const std::string& ref) override;
  Result<std::unique_ptr<content::Writer>> Writer(const Context& ctx,
                                                  const content::WriterOptions& opts) override;

 private:
  Db& db_;
  content::Store& backend_;
};

}  // namespace berth::metadata
