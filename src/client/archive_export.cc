// Export: an OCI image layout tar (plus Docker's manifest.json) of image records, as
// containerd 1.6 images/archive/exporter.go writes it for `ctr images export`. Blobs stream from
// the content store into the tar without being held in memory, each checked against its digest.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "client/archive.h"
#include "client/transfer.h"
#include "common/digest.h"

namespace berth::client {
namespace {

namespace content_api = containerd::services::content::v1;
namespace images_api = containerd::services::images::v1;
using archive::Descriptor;

bool IsManifestType(std::string_view mt) {
  return mt == images::kMediaTypeDockerManifest || mt == images::kMediaTypeOciManifest;
}
bool IsIndexType(std::string_view mt) {
  return mt == images::kMediaTypeDockerManifestList || mt == images::kMediaTypeOciIndex;
}
// images.IsNonDistributable.
bool IsNonDistributable(std::string_view mt) {
  return mt.starts_with("application/vnd.oci.image.layer.nondistributable.") ||
         mt.starts_with("application/vnd.docker.image.rootfs.foreign.");
}

images::OciDescriptor ToOci(const Descriptor& d) {
  return {.media_type = d.media_type, .digest = d.digest, .size = d.size, .platform = d.platform};
}

// One tar entry: a directory, an in-memory file, or a blob streamed from the content store.
struct Record {
  enum class Kind { kDir, kData, kBlob } kind = Kind::kData;
  std::string name;
  int mode = 0444;
  std::string data;
  images::OciDescriptor blob;
};

// Streams `desc` from the content store to `sink` in the Read stream's chunks, verifying size
// and digest (exporter.go blobRecord).
Status StreamBlob(const Session& session, const images::OciDescriptor& desc,
                  const std::function<Status(std::string_view)>& sink) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::ReadContentRequest req;
  req.set_digest(desc.digest);
  req.set_size(desc.size);
  auto ctx = session.Context();
  auto reader = stub->Read(ctx.get(), req);
  content_api::ReadContentResponse resp;
  Sha256 hash;
  int64_t copied = 0;
  while (copied < desc.size && reader->Read(&resp)) {
    std::string_view data = resp.data();
    data = data.substr(0, static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(data.size()),
                                                                desc.size - copied)));
    hash.Update(data);
    Status st = sink(data);
    if (!st) {
      ctx->TryCancel();
      (void)reader->Finish();
      return st;
    }
    copied += static_cast<int64_t>(data.size());
  }
  if (copied < desc.size) {
    grpc::Status st = reader->Finish();
    if (!st.ok()) return FromGrpc(st).Wrap(fmt::format("failed to read blob {}", desc.digest));
    return Unknown(fmt::format("blob {}: unexpected EOF after {} of {} bytes", desc.digest, copied,
                               desc.size));
  }
  ctx->TryCancel();
  (void)reader->Finish();
  if (hash.Current().String() != desc.digest) {
    return FailedPrecondition(
        fmt::format("blob {}: unexpected digest {} copied", desc.digest, hash.Current().String()));
  }
  return Ok();
}

class Exporter {
 public:
  Exporter(const Session& session, const ExportOptions& options)
      : session_(session),
        options_(options),
        platform_(options.platforms.empty() ? std::vector{images::DefaultPlatform()}
                                            : options.platforms),
        reader_(ContentReader(session)) {}

  Status AddImage(const std::string& name) {
    auto stub = images_api::Images::NewStub(session_.Channel());
    images_api::GetImageRequest req;
    req.set_name(name);
    images_api::GetImageResponse resp;
    auto ctx = session_.Context();
    if (auto st = stub->Get(ctx.get(), req, &resp); !st.ok()) {
      return FromGrpc(st).Wrap(fmt::format("image {:?}", name));
    }
    const auto& t = resp.image().target();
    Descriptor d{.media_type = t.media_type(), .digest = t.digest(), .size = t.size()};
    for (const auto& [k, v] : t.annotations()) d.annotations[k] = v;
    // exporter.go addNameAnnotation.
    d.annotations[std::string(archive::kAnnotationImageName)] = name;
    d.annotations[std::string(archive::kAnnotationRefName)] = archive::OciRefName(name);
    manifests_.push_back(std::move(d));
    return Ok();
  }

  // The records of the whole archive, sorted by name without duplicates (writeTar).
  Result<std::vector<Record>> Plan() {
    records_.push_back({.kind = Record::Kind::kData,
                        .name = std::string(archive::kOciLayoutFile),
                        .data = archive::OciLayoutJson()});
    records_.push_back({.kind = Record::Kind::kData,
                        .name = std::string(archive::kIndexFile),
                        .mode = 0644,
                        .data = archive::IndexJson(manifests_)});
    for (const auto& desc : manifests_) BERTH_TRY(AddManifest(desc));
    if (!docker_order_.empty()) {
      std::vector<archive::DockerManifest> mfsts;
      for (const auto& digest : docker_order_) {
        BERTH_ASSIGN_OR_RETURN(auto m, DockerEntry(docker_[digest]));
        mfsts.push_back(std::move(m));
      }
      records_.push_back({.kind = Record::Kind::kData,
                          .name = std::string(archive::kDockerManifestFile),
                          .mode = 0644,
                          .data = archive::DockerManifestsJson(mfsts)});
    }
    if (!algorithms_.empty()) {
      records_.push_back({.kind = Record::Kind::kDir, .name = "blobs/", .mode = 0755});
      for (const auto& alg : algorithms_) {
        records_.push_back(
            {.kind = Record::Kind::kDir, .name = "blobs/" + alg + "/", .mode = 0755});
      }
    }
    std::stable_sort(records_.begin(), records_.end(),
                     [](const Record& a, const Record& b) { return a.name < b.name; });
    std::vector<Record> out;
    for (auto& r : records_) {
      if (!out.empty() && out.back().name == r.name) continue;
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  struct DockerImage {
    images::OciDescriptor manifest;
    std::vector<std::string> names;
  };

  Status AddManifest(const Descriptor& desc) {
    const std::string name = [&] {
      auto it = desc.annotations.find(std::string(archive::kAnnotationImageName));
      return it == desc.annotations.end() ? std::string() : it->second;
    }();
    if (IsManifestType(desc.media_type)) {
      if (!docker_.contains(desc.digest)) {
        BERTH_TRY(Walk(ToOci(desc)));
        docker_[desc.digest] = DockerImage{.manifest = ToOci(desc)};
        if (!options_.skip_manifest_json) docker_order_.push_back(desc.digest);
      }
      if (!name.empty() && !options_.skip_manifest_json) docker_[desc.digest].names.push_back(name);
      return Ok();
    }
    if (!IsIndexType(desc.media_type)) {
      return InvalidArgument(
          fmt::format("only manifests may be exported: {} is {}", desc.digest, desc.media_type));
    }
    std::string chosen;
    if (auto it = resolved_index_.find(desc.digest); it != resolved_index_.end()) {
      chosen = it->second;
    } else {
      BERTH_TRY(AddBlob(ToOci(desc)));
      auto blob = reader_(ToOci(desc));
      if (!blob) return std::move(blob).error().Wrap("export index " + desc.digest);
      auto index = archive::ParseIndex(*blob);
      if (!index) return std::move(index).error().Wrap("export index " + desc.digest);
      std::vector<Descriptor> matched;
      for (const auto& m : *index) {
        if (!m.platform || platform_.Match(*m.platform)) {
          matched.push_back(m);
        } else if (!options_.all_platforms) {
          continue;
        }
        BERTH_TRY(Walk(ToOci(m)));
      }
      if (!options_.skip_manifest_json) {
        if (matched.empty()) {
          return NotFound(fmt::format("no manifest found for platform in {}", desc.digest));
        }
        std::stable_sort(matched.begin(), matched.end(),
                         [this](const Descriptor& a, const Descriptor& b) {
                           if (!a.platform) return false;
                           if (!b.platform) return true;
                           return platform_.Less(*a.platform, *b.platform);
                         });
        chosen = matched.front().digest;
        if (!docker_.contains(chosen)) docker_order_.push_back(chosen);
        docker_[chosen] = DockerImage{.manifest = ToOci(matched.front())};
      }
      resolved_index_[desc.digest] = chosen;
    }
    if (!chosen.empty() && !name.empty()) docker_[chosen].names.push_back(name);
    return Ok();
  }

  // getRecords: the blob and everything below it.
  Status Walk(const images::OciDescriptor& desc) {
    BERTH_TRY(AddBlob(desc));
    auto children = images::ImageChildren(reader_, desc);
    if (!children) return std::move(children).error().Wrap("export " + desc.digest);
    for (const auto& child : *children) BERTH_TRY(Walk(child));
    return Ok();
  }

  Status AddBlob(const images::OciDescriptor& desc) {
    BERTH_ASSIGN_OR_RETURN(std::string path, archive::BlobPath(desc.digest));
    algorithms_.insert(std::string(Digest::Parse(desc.digest)->Algorithm()));
    if (options_.skip_non_distributable && IsNonDistributable(desc.media_type)) return Ok();
    records_.push_back({.kind = Record::Kind::kBlob, .name = path, .blob = desc});
    return Ok();
  }

  Result<archive::DockerManifest> DockerEntry(const DockerImage& image) {
    auto blob = reader_(image.manifest);
    if (!blob) return std::move(blob).error().Wrap("unable to create manifests file");
    BERTH_ASSIGN_OR_RETURN(auto manifest, images::ImageChildren(reader_, image.manifest));
    archive::DockerManifest out;
    bool first = true;
    for (const auto& d : manifest) {
      auto path = archive::BlobPath(d.digest);
      if (!path) {
        return std::move(path).error().Wrap("invalid manifest " + image.manifest.digest);
      }
      // images.Children lists the config first, then the layers.
      if (first) {
        out.config = *path;
        first = false;
      } else {
        out.layers.push_back(*path);
      }
    }
    for (const auto& name : image.names) {
      BERTH_ASSIGN_OR_RETURN(std::string familiar, archive::FamiliarizeRef(name));
      out.repo_tags.push_back(std::move(familiar));
    }
    return out;
  }

  const Session& session_;
  const ExportOptions& options_;
  archive::StrictMatcher platform_;
  images::BlobReader reader_;
  std::vector<Descriptor> manifests_;
  std::vector<Record> records_;
  std::set<std::string> algorithms_;
  std::map<std::string, DockerImage> docker_;
  std::vector<std::string> docker_order_;  // manifest.json order: first seen
  std::map<std::string, std::string> resolved_index_;
};

struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

Status WriteTar(const Session& session, int fd, const std::string& path,
                const std::vector<Record>& records) {
  std::unique_ptr<struct archive, ArchiveWriteDeleter> a(archive_write_new());
  auto fail = [&](std::string_view what) {
    return Unknown(fmt::format("write {}: {}: {}", path, what, archive_error_string(a.get())));
  };
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_per_block(a.get(), 10240) != ARCHIVE_OK ||
      archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) {
    return fail("open tar");
  }
  for (const auto& r : records) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), r.name.c_str());
    archive_entry_set_perm(e.get(), r.mode);
    archive_entry_set_mtime(e.get(), 0, 0);
    switch (r.kind) {
      case Record::Kind::kDir:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        archive_entry_set_size(e.get(), 0);
        break;
      case Record::Kind::kData:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(r.data.size()));
        break;
      case Record::Kind::kBlob:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), r.blob.size);
        break;
    }
    if (int rc = archive_write_header(a.get(), e.get()); rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return fail(r.name);
    }
    auto put = [&](std::string_view data) -> Status {
      while (!data.empty()) {
        la_ssize_t n = archive_write_data(a.get(), data.data(), data.size());
        if (n <= 0) return fail(r.name);
        data.remove_prefix(static_cast<size_t>(n));
      }
      return Ok();
    };
    if (r.kind == Record::Kind::kData) BERTH_TRY(put(r.data));
    if (r.kind == Record::Kind::kBlob) {
      Status st = StreamBlob(session, r.blob, put);
      if (!st) return std::move(st).error().Wrap("failed to copy to tar");
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return fail("close tar");
  return Ok();
}

}  // namespace

Status Export(const Session& session, const std::string& path,
              const std::vector<std::string>& image_names, const ExportOptions& options) {
  if (image_names.empty()) return InvalidArgument("export: no image to export");
  Exporter exporter(session, options);
  for (const auto& name : image_names) BERTH_TRY(exporter.AddImage(name));
  BERTH_ASSIGN_OR_RETURN(auto records, exporter.Plan());
  if (path == "-") return WriteTar(session, STDOUT_FILENO, "/dev/stdout", records);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path));
  Status st = WriteTar(session, fd, path, records);
  if (::close(fd) != 0 && st) st = ErrnoError(errno, fmt::format("close {}", path));
  if (!st) ::unlink(path.c_str());  // no half-written archive left behind
  return st;
}

}  // namespace berth::client
