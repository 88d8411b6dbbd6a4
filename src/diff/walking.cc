#include "diff/walking.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "common/log.h"
#include "diff/apply_tar.h"
#include "diff/compression.h"
#include "diff/write_tar.h"

namespace berth::diff {
namespace {

constexpr const char* kUncompressedLabel = "containerd.io/uncompressed";

// Hashes (sha256) and counts what passes through: the diffID of a layer.
class HashingReader final : public Reader {
 public:
  explicit HashingReader(Reader& src) : src_(src) {}
  Result<size_t> Read(char* buf, size_t n) override {
    BERTH_ASSIGN_OR_RETURN(size_t got, src_.Read(buf, n));
    hash_.Update(buf, got);
    count_ += static_cast<int64_t>(got);
    return got;
  }
  Status Drain() {
    std::vector<char> buf(256 << 10);
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(size_t n, Read(buf.data(), buf.size()));
      if (n == 0) return Ok();
    }
  }
  berth::Digest Digest() const { return hash_.Current(); }
  int64_t Count() const { return count_; }

 private:
  Reader& src_;
  Sha256 hash_;
  int64_t count_ = 0;
};

class HashingSink final : public Sink {
 public:
  explicit HashingSink(Sink& out) : out_(out) {}
  Status Write(std::string_view data) override {
    hash_.Update(data);
    return out_.Write(data);
  }
  berth::Digest Digest() const { return hash_.Current(); }

 private:
  Sink& out_;
  Sha256 hash_;
};

// Batches writes into the content writer (each Write is a write(2) there).
class ContentSink final : public Sink {
 public:
  explicit ContentSink(content::Writer& w) : w_(w) { buf_.reserve(kBatch); }
  Status Write(std::string_view data) override {
    if (buf_.size() + data.size() > kBatch) BERTH_TRY(Flush());
    if (data.size() >= kBatch) return w_.Write(data);
    buf_.append(data);
    return Ok();
  }
  Status Flush() {
    if (buf_.empty()) return Ok();
    BERTH_TRY(w_.Write(buf_));
    buf_.clear();
    return Ok();
  }

 private:
  static constexpr size_t kBatch = 1 << 20;
  content::Writer& w_;
  std::string buf_;
};

std::string UniqueRef() {
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  uint32_t r = rd();
  std::string suffix;  // base64url of 3 random bytes, as containerd's uniqueRef
  for (int i = 0; i < 4; ++i) suffix += kAlphabet[(r >> (6 * i)) & 63];
  return fmt::format("{}-{}", nanos, suffix);
}

// containerd's getOverlayPath: upperdir and the lowerdirs (top first) of overlay options.
void OverlayPaths(const std::vector<std::string>& options, std::string& upper,
                  std::vector<std::string>& lowers) {
  for (const auto& o : options) {
    if (o.starts_with("upperdir=")) {
      upper = o.substr(9);
    } else if (o.starts_with("lowerdir=")) {
      lowers.clear();
      std::string_view rest = std::string_view(o).substr(9);
      for (size_t i = 0; i <= rest.size();) {
        size_t colon = rest.find(':', i);
        if (colon == std::string_view::npos) colon = rest.size();
        lowers.emplace_back(rest.substr(i, colon - i));
        i = colon + 1;
      }
    }
  }
}

}  // namespace

WalkingDiff::WalkingDiff(content::Store& store, std::string tmp_root)
    : store_(store), tmp_root_(std::move(tmp_root)) {}

Status WalkingDiff::ApplyToMounts(const std::vector<mount::Mount>& mounts, Reader& tar) {
  if (mounts.size() == 1 && mounts[0].type == "overlay" && !RunningInUserNS()) {
    ApplyOptions opts{.overlay = true};
    std::string upper;
    OverlayPaths(mounts[0].options, upper, opts.parents);
    if (!upper.empty()) return ApplyTar(upper, tar, opts);
  }
  return mount::WithTempMount(mounts, tmp_root_,
                              [&](const std::string& root) { return ApplyTar(root, tar); });
}

Result<Descriptor> WalkingDiff::Apply(const Context& ctx, const Descriptor& desc,
                                      const std::vector<mount::Mount>& mounts) {
  BERTH_ASSIGN_OR_RETURN(Processor processor, ProcessorFor(desc.media_type));
  auto ra = store_.ReaderAt(ctx, desc);
  if (!ra) return std::move(ra).error().Wrap("failed to get reader from content store");
  BlobReader blob(**ra);
  Compression compression = Compression::kNone;
  if (processor == Processor::kDetect) {
    BERTH_ASSIGN_OR_RETURN(std::string_view head, blob.Peek(10));
    compression = DetectCompression(head);
  }
  BERTH_ASSIGN_OR_RETURN(auto decompressed, Decompress(compression, blob));
  HashingReader tar(*decompressed);

  Status applied = ApplyToMounts(mounts, tar);
  if (applied) applied = tar.Drain();  // the diffID covers the whole stream (padding too)
  Status drained = blob.Drain();
  if (!desc.digest.Empty() && drained && blob.Digest() != desc.digest) {
    std::string what = fmt::format("apply layer {}: content digest mismatch: got {}",
                                   desc.digest.String(), blob.Digest().String());
    if (!applied) what += " (" + applied.error().ToString() + ")";
    return FailedPrecondition(std::move(what));
  }
  if (!applied) return std::move(applied).error().Wrap("apply layer " + desc.digest.String());
  BERTH_TRY(drained);
  log::L()
      .With("digest", desc.digest.String())
      .With("media", desc.media_type)
      .With("compression", CompressionName(compression))
      .Debug("diff applied");
  return Descriptor{
      .media_type = std::string(kMediaTypeLayer), .digest = tar.Digest(), .size = tar.Count()};
}

Result<Descriptor> WalkingDiff::Compare(const Context& ctx, const std::vector<mount::Mount>& lower,
                                        const std::vector<mount::Mount>& upper,
                                        const CompareOptions& opts) {
  std::string media_type =
      opts.media_type.empty() ? std::string(kMediaTypeLayerGzip) : opts.media_type;
  if (media_type != kMediaTypeLayer && media_type != kMediaTypeLayerGzip) {
    return NotImplemented("unsupported diff media type: " + media_type);
  }
  Result<Descriptor> out = InvalidArgument("compare: not run");
  BERTH_TRY(mount::WithTempMount(
      mount::ReadonlyMounts(lower), tmp_root_, [&](const std::string& lower_root) -> Status {
        return mount::WithTempMount(
            mount::ReadonlyMounts(upper), tmp_root_, [&](const std::string& upper_root) -> Status {
              out = WriteLayer(ctx, lower_root, upper_root, opts, media_type);
              if (!out) return out.error();
              return Ok();
            });
      }));
  return out;
}

Result<Descriptor> WalkingDiff::WriteLayer(const Context& ctx, const std::string& lower_root,
                                           const std::string& upper_root,
                                           const CompareOptions& opts,
                                           const std::string& media_type) {
  const bool new_ref = opts.ref.empty();
  const std::string ref = new_ref ? UniqueRef() : opts.ref;
  auto w = store_.Writer(ctx, {.ref = ref, .desc = {.media_type = media_type}});
  if (!w) return std::move(w).error().Wrap("failed to open writer");
  content::Writer& writer = **w;

  Labels labels = opts.labels;
  auto write = [&]() -> Status {
    if (!new_ref) BERTH_TRY(writer.Truncate(0));
    ContentSink sink(writer);
    if (media_type == kMediaTypeLayerGzip) {
      BERTH_ASSIGN_OR_RETURN(auto gz, GzipWriter::Create(sink));
      HashingSink tar(*gz);
      if (auto s = WriteDiff(lower_root, upper_root, tar); !s) {
        return std::move(s).error().Wrap("failed to write compressed diff");
      }
      BERTH_TRY(gz->Close());
      labels[kUncompressedLabel] = tar.Digest().String();
    } else {
      HashingSink tar(sink);
      if (auto s = WriteDiff(lower_root, upper_root, tar); !s) {
        return std::move(s).error().Wrap("failed to write diff");
      }
      labels[kUncompressedLabel] = tar.Digest().String();
    }
    return sink.Flush();
  };
  if (auto s = write(); !s) {
    (void)writer.Close();
    if (new_ref) {
      if (auto a = store_.Abort(ctx, ref); !a) {
        log::L().WithError(a.error()).With("ref", ref).Warn("failed to delete diff upload");
      }
    }
    return std::move(s).error();
  }

  const Digest dgst = writer.Digest();
  if (auto s = writer.Commit(0, dgst, labels); !s && !s.error().Is(Errc::kAlreadyExists)) {
    return std::move(s).error().Wrap("failed to commit");
  }
  auto info = store_.Info(ctx, dgst);
  if (!info) return std::move(info).error().Wrap("failed to get info from content store");
  if (info->labels.count(kUncompressedLabel) == 0) {
    info->labels[kUncompressedLabel] = labels[kUncompressedLabel];
    if (auto u = store_.Update(ctx, *info, {std::string("labels.") + kUncompressedLabel}); !u) {
      return std::move(u).error().Wrap("error setting uncompressed label");
    }
  }
  return Descriptor{.media_type = media_type, .digest = info->digest, .size = info->size};
}

}  // namespace berth::diff
