#include "diff/walking.h"

#include <time.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "common/log.h"
#include "diff/apply_tar.h"
#include "diff/compression.h"
#include "diff/write_tar.h"

namespace berth::diff {
namespace {

constexpr const char* kUncompressedLabel = "containerd.io/uncompressed";

using Clock = std::chrono::steady_clock;

// CPU time (user + system) of the calling thread: Apply runs on one thread. Unlike wall time,
// not stretched by other work on a busy machine.
Clock::duration ThreadCpu() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                     std::chrono::nanoseconds(ts.tv_nsec));
}

// How long the calling thread has waited, runnable, for a CPU (the kernel's schedstat); empty
// when the kernel does not keep it.
std::optional<Clock::duration> RunqueueWait() {
  FILE* f = std::fopen("/proc/thread-self/schedstat", "re");
  if (f == nullptr) return std::nullopt;
  unsigned long long run = 0, wait = 0;  // NOLINT(google-runtime-int): fscanf's %llu
  const int n = std::fscanf(f, "%llu %llu", &run, &wait);
  std::fclose(f);
  if (n != 2) return std::nullopt;
  return std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(wait));
}

// Where the CPU time of one Apply goes (logged at debug level, collected by bench/run.sh): the
// stages are nested pull readers, so each one's time is measured around its source's Read
// (one clock_gettime pair per chunk of 256 KiB or more).
struct Stopwatch {
  Clock::duration spent{};
  template <class F>
  auto Time(F&& f) {
    auto t0 = ThreadCpu();
    auto r = f();
    spent += ThreadCpu() - t0;
    return r;
  }
};

std::string Seconds(Clock::duration d) {
  return fmt::format("{:.6f}", std::chrono::duration<double>(d).count());
}

// Times the content store's reads (pread of the blob).
class TimedReaderAt final : public content::ReaderAt {
 public:
  TimedReaderAt(content::ReaderAt& src, Stopwatch& sw) : src_(src), sw_(sw) {}
  Result<size_t> ReadAt(void* buf, size_t n, int64_t offset) override {
    return sw_.Time([&] { return src_.ReadAt(buf, n, offset); });
  }
  int64_t Size() const override { return src_.Size(); }

 private:
  content::ReaderAt& src_;
  Stopwatch& sw_;
};

// Times everything below it in the reader chain.
class TimedReader final : public Reader {
 public:
  TimedReader(Reader& src, Stopwatch& sw) : src_(src), sw_(sw) {}
  Result<size_t> Read(char* buf, size_t n) override {
    return sw_.Time([&] { return src_.Read(buf, n); });
  }

 private:
  Reader& src_;
  Stopwatch& sw_;
};

// Hashes (sha256) and counts what passes through: the diffID of a layer. The time spent
// reading below it and hashing are kept apart.
class HashingReader final : public Reader {
 public:
  explicit HashingReader(Reader& src) : src_(src) {}
  Result<size_t> Read(char* buf, size_t n) override {
    BERTH_ASSIGN_OR_RETURN(size_t got, read_.Time([&] { return src_.Read(buf, n); }));
    hash_time_.Time([&] {
      hash_.Update(buf, got);
      return 0;
    });
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
  Clock::duration ReadTime() const { return read_.spent; }
  Clock::duration HashTime() const { return hash_time_.spent; }

 private:
  Reader& src_;
  Sha256 hash_;
  int64_t count_ = 0;
  Stopwatch read_, hash_time_;
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
  const auto start = Clock::now();
  const auto start_cpu = ThreadCpu();
  const bool debug = log::Enabled(log::Level::kDebug);
  const auto start_runq = debug ? RunqueueWait() : std::nullopt;
  BERTH_ASSIGN_OR_RETURN(Processor processor, ProcessorFor(desc.media_type));
  auto ra = store_.ReaderAt(ctx, desc);
  if (!ra) return std::move(ra).error().Wrap("failed to get reader from content store");
  // io: preads of the blob; chain: BlobReader reads made by the decompressor; edges: the peek
  // before it and the drain after it; extract: ApplyToMounts.
  Stopwatch io, chain, edges, extract;
  TimedReaderAt timed_blob(**ra, io);
  BlobReader blob(timed_blob);
  Compression compression = Compression::kNone;
  if (processor == Processor::kDetect) {
    BERTH_ASSIGN_OR_RETURN(std::string_view head, edges.Time([&] { return blob.Peek(10); }));
    compression = DetectCompression(head);
  }
  TimedReader compressed(blob, chain);
  BERTH_ASSIGN_OR_RETURN(auto decompressed, Decompress(compression, compressed));
  HashingReader tar(*decompressed);

  Status applied = extract.Time([&] { return ApplyToMounts(mounts, tar); });
  const auto streamed = tar.ReadTime() + tar.HashTime();  // the part of extract spent reading
  if (applied) applied = tar.Drain();  // the diffID covers the whole stream (padding too)
  Status drained = edges.Time([&] { return blob.Drain(); });
  if (!desc.digest.Empty() && drained && blob.Digest() != desc.digest) {
    std::string what = fmt::format("apply layer {}: content digest mismatch: got {}",
                                   desc.digest.String(), blob.Digest().String());
    if (!applied) what += " (" + applied.error().ToString() + ")";
    return FailedPrecondition(std::move(what));
  }
  if (!applied) return std::move(applied).error().Wrap("apply layer " + desc.digest.String());
  BERTH_TRY(drained);
  if (debug) {
    const auto runq = RunqueueWait();
    // total: wall time; cpu: the thread's CPU time over the whole Apply; runq: its time
    // runnable but waiting for a CPU (a busy machine); total - cpu - runq: blocked (I/O, locks).
    // The CPU time split up by stage:
    // read: pread from the content store; verify: sha256 of the compressed blob (and its
    // copies); decompress: the decompressor alone; diffid: sha256 of the tar; write: parsing
    // the tar and every filesystem call (mkdir, open, write, chown, xattrs, times; the
    // temporary mount when there is one). No file is fsynced (nor does containerd).
    log::L()
        .With("digest", desc.digest.String())
        .With("media", desc.media_type)
        .With("compression", CompressionName(compression))
        .With("size", blob.Count())
        .With("uncompressed", tar.Count())
        .With("total_s", Seconds(Clock::now() - start))
        .With("cpu_s", Seconds(ThreadCpu() - start_cpu))
        .With("runq_s", start_runq && runq ? Seconds(*runq - *start_runq) : "n/a")
        .With("read_s", Seconds(io.spent))
        .With("verify_s", Seconds(chain.spent + edges.spent - io.spent))
        .With("decompress_s", Seconds(tar.ReadTime() - chain.spent))
        .With("diffid_s", Seconds(tar.HashTime()))
        .With("write_s", Seconds(extract.spent - streamed))
        .Debug("diff applied");
  }
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
