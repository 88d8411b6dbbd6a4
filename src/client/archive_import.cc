// Import: an OCI image layout tar or a `docker save` tar into berthd, as containerd 1.6's
// client.Import over images/archive/importer.go does for `ctr images import`. Every regular
// file of the tar streams into the content store as it is read (nothing is held in memory but
// the JSON documents), all under one lease; image records are made only after the whole image
// graph was found and labelled, so a bad archive leaves no image behind.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "client/archive.h"
#include "client/content.h"
#include "client/transfer.h"
#include "common/digest.h"

namespace berth::client {
namespace {

namespace content_api = containerd::services::content::v1;
namespace images_api = containerd::services::images::v1;
using archive::Descriptor;

constexpr size_t kChunk = 1 << 20;
constexpr size_t kHeadBytes = 10;  // detectLayerMediaType reads 10 bytes

struct ArchiveReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// A blob found in the tar.
struct TarBlob {
  std::string digest;
  int64_t size = 0;
  std::string head;  // its first bytes, for the layer media type of docker archives
};

// The tar, read once from start to end.
class TarReader {
 public:
  static Result<std::unique_ptr<TarReader>> Open(const std::string& path) {
    int fd = STDIN_FILENO;
    if (path != "-") {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrnoError(errno, fmt::format("open {}", path));
    }
    auto r = std::unique_ptr<TarReader>(new TarReader(path, fd, path != "-"));
    if (archive_read_support_format_tar(r->a_.get()) != ARCHIVE_OK ||
        archive_read_open_fd(r->a_.get(), fd, kChunk) != ARCHIVE_OK) {
      return r->Fail("open");
    }
    return r;
  }
  ~TarReader() {
    a_.reset();
    if (own_fd_) ::close(fd_);
  }

  // The next entry, or nullptr at the end.
  Result<archive_entry*> Next() {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a_.get(), &e);
    if (rc == ARCHIVE_EOF) return static_cast<archive_entry*>(nullptr);
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return Fail("read tar header");
    return e;
  }
  // Up to `max` bytes of the current entry ("" at its end).
  Result<std::string_view> Read(size_t max = kChunk) {
    buf_.resize(max);
    la_ssize_t n = archive_read_data(a_.get(), buf_.data(), max);
    if (n < 0) return Fail("read tar entry");
    return std::string_view(buf_.data(), static_cast<size_t>(n));
  }
  Status Skip() {
    if (archive_read_data_skip(a_.get()) != ARCHIVE_OK) return Fail("skip tar entry");
    return Ok();
  }
  Error Fail(std::string_view what) {
    const char* msg = archive_error_string(a_.get());
    return InvalidArgument(
        fmt::format("{}: {}: {}", path_ == "-" ? "stdin" : path_, what, msg ? msg : "failed"));
  }

 private:
  TarReader(std::string path, int fd, bool own)
      : path_(std::move(path)), fd_(fd), own_fd_(own), a_(archive_read_new()) {}
  std::string path_;
  int fd_;
  bool own_fd_;
  std::unique_ptr<struct archive, ArchiveReadDeleter> a_;
  std::string buf_;
};

// Reads a whole small entry (the JSON documents), refusing more than kJsonLimit.
Result<std::string> ReadJsonEntry(TarReader& tar, const std::string& name) {
  std::string out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(auto chunk, tar.Read());
    if (chunk.empty()) return out;
    out += chunk;
    if (static_cast<int64_t>(out.size()) > archive::kJsonLimit) {
      return InvalidArgument(fmt::format("{}: larger than {} bytes", name, archive::kJsonLimit));
    }
  }
}

// onUntarBlob: streams the entry into the content store under ref "tar-<name>", hashing it on
// the way. A layout path blobs/sha256/<hex> is also the expected digest, which the daemon checks.
Result<TarBlob> IngestEntry(const Session& session, TarReader& tar, const std::string& name,
                            int64_t size) {
  TarBlob blob{.size = size};
  BERTH_ASSIGN_OR_RETURN(auto first, tar.Read());
  std::string pending(first);
  blob.head = pending.substr(0, kHeadBytes);
  const std::string expected = archive::DigestOfBlobPath(name);
  const std::string ref = "tar-" + name;
  auto writer = ContentWriter::Open(session, ref, size, expected);
  if (!writer && writer.error().Is(Errc::kAlreadyExists)) {
    BERTH_TRY(tar.Skip());
    blob.digest = expected;
    return blob;
  }
  if (!writer) return std::move(writer).error().Wrap(fmt::format("failed to ingest {:?}", name));
  // Bytes the daemon already holds for this ref: an interrupted ingest, or (offset == size) a
  // blob another namespace shares. With the digest known the daemon verifies the whole at
  // commit, so they are kept; without it they may be another archive's: start over.
  int64_t held = (*writer)->Offset();
  if (held > 0 && (expected.empty() || held > size)) {
    BERTH_TRY((*writer)->Abort());
    writer = ContentWriter::Open(session, ref, size, expected);
    if (!writer) return std::move(writer).error().Wrap(fmt::format("failed to ingest {:?}", name));
    held = (*writer)->Offset();
    if (held > 0) {
      return Unknown(fmt::format("failed to ingest {:?}: ref {} still holds {} bytes after abort",
                                 name, ref, held));
    }
  }
  Sha256 hash;
  int64_t written = 0;
  auto fail = [&](Error e) -> Error {
    (void)(*writer)->Abort();
    return std::move(e).Wrap(fmt::format("failed to ingest {:?}", name));
  };
  while (!pending.empty()) {
    hash.Update(pending);
    const int64_t begin = written;
    written += static_cast<int64_t>(pending.size());
    if (written > held) {
      std::string_view rest(pending);
      if (begin < held) rest.remove_prefix(static_cast<size_t>(held - begin));
      if (auto st = (*writer)->Write(rest); !st) return fail(std::move(st).error());
    }
    auto chunk = tar.Read();
    if (!chunk) return fail(std::move(chunk).error());
    pending.assign(*chunk);
  }
  if (written != size) {
    return fail(InvalidArgument(fmt::format("read {} bytes, header says {}", written, size)));
  }
  blob.digest = hash.Current().String();
  if (!expected.empty() && blob.digest != expected) {
    return fail(InvalidArgument(
        fmt::format("content is {}, not the {} its name says", blob.digest, expected)));
  }
  if (auto st = (*writer)->Commit(); !st) return fail(std::move(st).error());
  return blob;
}

// What the tar held.
struct TarContents {
  std::optional<std::string> layout_version;
  std::optional<std::vector<archive::DockerManifest>> docker;
  bool repositories = false;
  std::map<std::string, std::string> symlinks;  // name -> target, relative to the root
  std::map<std::string, TarBlob> blobs;         // cleaned entry name -> blob
};

Result<TarContents> ReadTar(const Session& session, const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(auto tar, TarReader::Open(path));
  TarContents out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(archive_entry * e, tar->Next());
    if (e == nullptr) break;
    const char* raw = archive_entry_pathname(e);
    BERTH_ASSIGN_OR_RETURN(std::string name, archive::CleanEntryName(raw ? raw : ""));
    if (archive_entry_filetype(e) == AE_IFLNK && archive_entry_hardlink(e) == nullptr) {
      // path.Join(path.Dir(name), target): relative to the link's directory, never above the
      // archive root (CleanEntryName refuses that).
      std::string target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
      size_t slash = name.rfind('/');
      std::string joined =
          (slash == std::string::npos ? std::string() : name.substr(0, slash + 1)) + target;
      while (joined.starts_with('/')) joined.erase(0, 1);
      BERTH_ASSIGN_OR_RETURN(out.symlinks[name], archive::CleanEntryName(joined));
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr) continue;
    if (name == archive::kOciLayoutFile) {
      BERTH_ASSIGN_OR_RETURN(std::string text, ReadJsonEntry(*tar, name));
      auto version = archive::ParseOciLayout(text);
      if (!version) return std::move(version).error().Wrap("untar oci layout");
      out.layout_version = *version;
    } else if (name == archive::kDockerManifestFile) {
      BERTH_ASSIGN_OR_RETURN(std::string text, ReadJsonEntry(*tar, name));
      auto mfsts = archive::ParseDockerManifests(text);
      if (!mfsts) return std::move(mfsts).error().Wrap("untar manifest");
      out.docker = std::move(*mfsts);
    } else {
      if (name == "repositories") out.repositories = true;
      BERTH_ASSIGN_OR_RETURN(out.blobs[name],
                             IngestEntry(session, *tar, name, archive_entry_size(e)));
    }
  }
  return out;
}

// Content.List with filters (ORed), as resolveLayers' store.Walk.
Result<std::vector<content_api::Info>> ListContent(const Session& session,
                                                   const std::vector<std::string>& filters) {
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::ListContentRequest req;
  for (const auto& f : filters) req.add_filters(f);
  auto ctx = session.Context();
  auto reader = stub->List(ctx.get(), req);
  content_api::ListContentResponse resp;
  std::vector<content_api::Info> out;
  while (reader->Read(&resp)) out.insert(out.end(), resp.info().begin(), resp.info().end());
  if (auto st = reader->Finish(); !st.ok()) return FromGrpc(st);
  return out;
}

// The first bytes of a stored blob.
Result<std::string> ReadHead(const Session& session, const std::string& digest, int64_t size) {
  if (size == 0) return std::string();
  auto stub = content_api::Content::NewStub(session.Channel());
  content_api::ReadContentRequest req;
  req.set_digest(digest);
  req.set_size(std::min<int64_t>(size, kHeadBytes));
  auto ctx = session.Context();
  auto reader = stub->Read(ctx.get(), req);
  content_api::ReadContentResponse resp;
  std::string out;
  while (out.size() < kHeadBytes && reader->Read(&resp)) out += resp.data();
  if (auto st = reader->Finish(); !st.ok() && out.empty()) return FromGrpc(st);
  return out.substr(0, kHeadBytes);
}

Result<Descriptor> StoreJson(const Session& session, std::string_view media_type,
                             const std::string& json) {
  Descriptor d{.media_type = std::string(media_type),
               .digest = Digest::FromBytes(json).String(),
               .size = static_cast<int64_t>(json.size())};
  images::OciDescriptor oci{.media_type = d.media_type, .digest = d.digest, .size = d.size};
  BERTH_TRY(WriteBlob(session, "manifest-" + d.digest, oci, json));
  return d;
}

// importer.go for Docker v1.1/v1.2: a docker schema 2 manifest per manifest.json entry (layers
// that were imported before and compressed are used in their compressed form), one index with
// an entry per RepoTag, names normalized ("busybox:1" -> "docker.io/library/busybox:1").
Result<Descriptor> ImportDocker(const Session& session, TarContents& tar) {
  for (const auto& [name, target] : tar.symlinks) {
    auto it = tar.blobs.find(target);
    if (it == tar.blobs.end()) {
      return NotFound(fmt::format("no target for symlink layer from {:?} to {:?}", name, target));
    }
    tar.blobs[name] = it->second;
  }
  std::vector<Descriptor> index;
  for (const auto& m : *tar.docker) {
    auto cfg = tar.blobs.find(m.config);
    if (cfg == tar.blobs.end())
      return NotFound(fmt::format("image config {:?} not found", m.config));
    Descriptor config{.media_type = std::string(images::kMediaTypeDockerConfig),
                      .digest = cfg->second.digest,
                      .size = cfg->second.size};
    std::vector<Descriptor> layers;
    std::vector<std::string> filters;
    for (const auto& f : m.layers) {
      auto it = tar.blobs.find(f);
      if (it == tar.blobs.end()) {
        return NotFound(fmt::format("failed to resolve layers: layer {:?} not found", f));
      }
      layers.push_back({.media_type = std::string(archive::DetectLayerMediaType(it->second.head)),
                        .digest = it->second.digest,
                        .size = it->second.size});
      filters.push_back(
          fmt::format("labels.\"containerd.io/uncompressed\"=={}", it->second.digest));
    }
    if (!filters.empty()) {
      auto infos = ListContent(session, filters);
      if (!infos) return std::move(infos).error().Wrap("failure checking for compressed blobs");
      for (const auto& info : *infos) {
        auto label = info.labels().find("containerd.io/uncompressed");
        if (label == info.labels().end()) continue;
        for (auto& l : layers) {
          if (l.digest != label->second) continue;
          BERTH_ASSIGN_OR_RETURN(std::string head, ReadHead(session, info.digest(), info.size()));
          l = {.media_type = std::string(archive::DetectLayerMediaType(head)),
               .digest = info.digest(),
               .size = info.size()};
        }
      }
    }
    auto manifest = StoreJson(session, images::kMediaTypeDockerManifest,
                              archive::DockerSchema2ManifestJson(config, layers));
    if (!manifest) return std::move(manifest).error().Wrap("write docker manifest");
    // images.Platforms of a manifest: the config's os/architecture, normalized.
    auto cfg_json = ReadContent(session, {.digest = config.digest, .size = config.size});
    if (!cfg_json) return std::move(cfg_json).error().Wrap("unable to resolve platform");
    auto platforms = images::ImagePlatforms(
        [&](const images::OciDescriptor& d) -> Result<std::string> {
          if (d.digest == config.digest) return *cfg_json;
          return ReadContent(session, d);
        },
        {.media_type = manifest->media_type, .digest = manifest->digest, .size = manifest->size});
    if (!platforms) return std::move(platforms).error().Wrap("unable to resolve platform");
    if (!platforms->empty()) {
      images::Platform p = platforms->front();
      manifest->platform = images::NormalizePlatform({.os = p.os, .architecture = p.architecture});
    }
    if (m.repo_tags.empty()) {
      index.push_back(*manifest);
      continue;
    }
    for (const auto& tag : m.repo_tags) {
      BERTH_ASSIGN_OR_RETURN(std::string normalized, archive::NormalizeDockerRef(tag));
      Descriptor d = *manifest;
      d.annotations[std::string(archive::kAnnotationImageName)] = normalized;
      d.annotations[std::string(archive::kAnnotationRefName)] = archive::OciRefName(normalized);
      index.push_back(std::move(d));
    }
  }
  return StoreJson(session, images::kMediaTypeOciIndex, archive::IndexJson(index));
}

// images.ChildGCLabels.
std::string ChildLabelKey(std::string_view mt) {
  if (mt == images::kMediaTypeDockerConfig || mt == images::kMediaTypeOciConfig ||
      mt.starts_with("application/vnd.containerd.container.checkpoint.config.")) {
    return "containerd.io/gc.ref.content.config";
  }
  if (mt == images::kMediaTypeDockerManifest || mt == images::kMediaTypeOciManifest) {
    return "containerd.io/gc.ref.content.m.";
  }
  if (mt.starts_with("application/vnd.oci.image.layer.") ||
      mt.starts_with("application/vnd.docker.image.rootfs.")) {
    return "containerd.io/gc.ref.content.l.";
  }
  return "containerd.io/gc.ref.content.";
}

struct PendingImage {
  std::string name;
  Descriptor target;
};

// The walk of client.Import: names from the root index's annotations, children filtered by
// platform, each parent labelled with its children so GC keeps them (SetChildrenLabels).
class Walker {
 public:
  Walker(const Session& session, const ImportOptions& options, std::string prefix)
      : session_(session),
        options_(options),
        prefix_(std::move(prefix)),
        reader_(ContentReader(session)),
        strict_(options.platforms),
        only_(images::PlatformMatcher::Only(images::DefaultPlatform())) {}

  Status Walk(const Descriptor& root) {
    root_ = root.digest;
    BERTH_TRY(Visit(root));
    if (empty_) {
      return NotFound("image might be filtered out: nothing of the archive matches the platform");
    }
    return Ok();
  }
  std::vector<PendingImage>& Images() { return images_; }

 private:
  bool Match(const std::optional<images::Platform>& p) const {
    if (!p || options_.all_platforms) return true;
    return options_.platforms.empty() ? only_.Match(*p) : strict_.Match(*p);
  }

  Status Visit(const Descriptor& desc) {
    std::vector<Descriptor> children;
    if (desc.digest == root_) {
      auto blob =
          reader_({.media_type = desc.media_type, .digest = desc.digest, .size = desc.size});
      if (!blob) return std::move(blob).error().Wrap("read index.json");
      auto index = archive::ParseIndex(*blob);
      if (!index) return std::move(index).error().Wrap("index.json");
      for (const auto& m : *index) Name(m);
      children = std::move(*index);
    } else {
      images::OciDescriptor oci{.media_type = desc.media_type,
                                .digest = desc.digest,
                                .size = desc.size,
                                .platform = desc.platform};
      // Configs and layers are not read by the walk: check they were in the archive (or the
      // store) now, so that a missing blob refuses the import instead of failing a later unpack.
      auto info = StatContent(session_, desc.digest);
      if (!info) {
        return std::move(info).error().Wrap(
            fmt::format("blob {} ({}) is missing from the archive", desc.digest, desc.media_type));
      }
      if (info->size != desc.size) {
        return FailedPrecondition(fmt::format("blob {} has {} bytes, its descriptor says {}",
                                              desc.digest, info->size, desc.size));
      }
      auto list = images::ImageChildren(reader_, oci);
      if (!list) return std::move(list).error().Wrap("import " + desc.digest);
      for (const auto& c : *list) {
        children.push_back({.media_type = c.media_type,
                            .digest = c.digest,
                            .size = c.size,
                            .platform = c.platform});
      }
    }
    std::vector<Descriptor> kept;
    for (auto& c : children) {
      if (Match(c.platform)) kept.push_back(std::move(c));
    }
    if (!kept.empty()) {
      empty_ = false;
      std::map<std::string, std::string> labels;
      std::map<std::string, int> seen;
      for (const auto& c : kept) {
        std::string key = ChildLabelKey(c.media_type);
        int i = seen[key]++;
        if (i > 0 || key.back() == '.') key += std::to_string(i);
        labels[key] = c.digest;
      }
      BERTH_TRY(UpdateContentLabels(session_, desc.digest, labels));
    }
    for (const auto& c : kept) BERTH_TRY(Visit(c));
    return Ok();
  }

  // import.go imageName + the digest refs of --digests.
  void Name(const Descriptor& m) {
    std::string name;
    if (auto it = m.annotations.find(std::string(archive::kAnnotationImageName));
        it != m.annotations.end()) {
      name = it->second;
    }
    if (name.empty()) {
      if (auto it = m.annotations.find(std::string(archive::kAnnotationRefName));
          it != m.annotations.end() && !it->second.empty()) {
        name = options_.base_name.empty() ? archive::AddRefPrefix(prefix_, it->second)
                                          : archive::FilterRefPrefix(prefix_, it->second);
      }
    }
    if (!name.empty()) images_.push_back({name, m});
    if (options_.digests) images_.push_back({prefix_ + "@" + m.digest, m});
  }

  const Session& session_;
  const ImportOptions& options_;
  std::string prefix_;
  images::BlobReader reader_;
  archive::StrictMatcher strict_;
  images::PlatformMatcher only_;
  std::string root_;
  bool empty_ = true;
  std::vector<PendingImage> images_;
};

// images.Update(target) or Create.
Status PutImage(const Session& session, const PendingImage& image) {
  auto stub = images_api::Images::NewStub(session.Channel());
  images_api::Image record;
  record.set_name(image.name);
  auto* t = record.mutable_target();
  t->set_media_type(image.target.media_type);
  t->set_digest(image.target.digest);
  t->set_size(image.target.size);
  for (const auto& [k, v] : image.target.annotations) (*t->mutable_annotations())[k] = v;
  images_api::UpdateImageRequest ureq;
  *ureq.mutable_image() = record;
  ureq.mutable_update_mask()->add_paths("target");
  images_api::UpdateImageResponse uresp;
  {
    auto ctx = session.Context();
    grpc::Status st = stub->Update(ctx.get(), ureq, &uresp);
    if (st.ok()) return Ok();
    Error e = FromGrpc(st);
    if (!e.Is(Errc::kNotFound)) return std::move(e).Wrap("update image " + image.name);
  }
  images_api::CreateImageRequest creq;
  *creq.mutable_image() = record;
  images_api::CreateImageResponse cresp;
  auto ctx = session.Context();
  if (auto st = stub->Create(ctx.get(), creq, &cresp); !st.ok()) {
    return FromGrpc(st).Wrap("create image " + image.name);
  }
  return Ok();
}

Result<std::vector<ImportedImage>> ImportLeased(const Session& session, const std::string& path,
                                                const ImportOptions& options) {
  BERTH_ASSIGN_OR_RETURN(TarContents tar, ReadTar(session, path));
  Descriptor root;
  if (tar.layout_version && !tar.layout_version->empty()) {
    if (*tar.layout_version != archive::kOciLayoutVersion) {
      return InvalidArgument(fmt::format("unsupported OCI version {}", *tar.layout_version));
    }
    auto it = tar.blobs.find(std::string(archive::kIndexFile));
    if (it == tar.blobs.end()) {
      return InvalidArgument(
          fmt::format("missing index.json in OCI layout {}", archive::kOciLayoutVersion));
    }
    root = {.media_type = std::string(images::kMediaTypeOciIndex),
            .digest = it->second.digest,
            .size = it->second.size};
  } else if (tar.docker) {
    BERTH_ASSIGN_OR_RETURN(root, ImportDocker(session, tar));
  } else if (tar.repositories) {
    return NotImplemented(
        "legacy docker archive (repositories file without manifest.json) is not supported");
  } else {
    return InvalidArgument("unrecognized image format: neither an OCI layout nor a docker archive");
  }

  const std::string prefix =
      options.base_name.empty() ? archive::DefaultImportPrefix() : options.base_name;
  Walker walker(session, options, prefix);
  BERTH_TRY(walker.Walk(root));
  std::vector<PendingImage> pending;
  if (!options.index_name.empty()) pending.push_back({options.index_name, root});
  for (auto& i : walker.Images()) pending.push_back(std::move(i));
  std::vector<ImportedImage> out;
  for (const auto& image : pending) {
    BERTH_TRY(PutImage(session, image));
    out.push_back({image.name,
                   {.media_type = image.target.media_type,
                    .digest = image.target.digest,
                    .size = image.target.size,
                    .platform = image.target.platform}});
  }
  return out;
}

}  // namespace

Result<std::vector<ImportedImage>> Import(const Session& session, const std::string& path,
                                          const ImportOptions& options) {
  BERTH_ASSIGN_OR_RETURN(LeasedSession leased, WithLease(session));
  auto imported = ImportLeased(leased.session, path, options);
  leased.done();
  if (!imported || !options.unpack) return imported;
  BERTH_ASSIGN_OR_RETURN(std::string snapshotter,
                         ResolveSnapshotterName(session, options.snapshotter));
  auto platform = images::PlatformMatcher::Only(
      options.platforms.empty() ? images::DefaultPlatform() : options.platforms.front());
  for (const auto& image : *imported) {
    auto unpacked = UnpackImage(session, image.target, platform, {.snapshotter = snapshotter});
    if (!unpacked) return std::move(unpacked).error().Wrap("unpack " + image.name);
  }
  return imported;
}

}  // namespace berth::client
