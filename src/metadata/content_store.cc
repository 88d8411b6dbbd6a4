#include "metadata/content_store.h"

#include <mutex>

#include <fmt/format.h>

#include "common/filters.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"

namespace berth::metadata {
namespace {

constexpr auto kIngestExpiry = std::chrono::hours(24);

Key BlobKey(const std::string& ns, const Digest& d, std::initializer_list<std::string> rest = {}) {
  Key k = NsKey(ns, {kBucketContent, "blob", d.String()});
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

Key IngestKey(const std::string& ns, const std::string& ref,
              std::initializer_list<std::string> rest = {}) {
  Key k = NsKey(ns, {kBucketContent, "ingests", ref});
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

Result<std::optional<content::Info>> ReadBlob(const Txn& txn, const std::string& ns,
                                              const Digest& d) {
  BERTH_ASSIGN_OR_RETURN(auto size, txn.Get(BlobKey(ns, d, {"size"})));
  if (!size) return std::optional<content::Info>();
  content::Info info{.digest = d, .size = std::stoll(*size)};
  BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(BlobKey(ns, d, {"createdat"})));
  BERTH_ASSIGN_OR_RETURN(auto updated, txn.Get(BlobKey(ns, d, {"updatedat"})));
  info.created_at = DecodeTime(created.value_or(""));
  info.updated_at = DecodeTime(updated.value_or(""));
  BERTH_ASSIGN_OR_RETURN(info.labels, ReadLabels(txn, BlobKey(ns, d, {"labels"})));
  return std::optional<content::Info>(std::move(info));
}

Status WriteBlob(Txn& txn, const std::string& ns, const content::Info& info) {
  BERTH_TRY(txn.Put(BlobKey(ns, info.digest, {"size"}), std::to_string(info.size)));
  BERTH_TRY(txn.Put(BlobKey(ns, info.digest, {"createdat"}), EncodeTime(info.created_at)));
  BERTH_TRY(txn.Put(BlobKey(ns, info.digest, {"updatedat"}), EncodeTime(info.updated_at)));
  return WriteLabels(txn, BlobKey(ns, info.digest, {"labels"}), info.labels);
}

// A writer in a namespace: either a backend writer, or "shared" (the blob exists in another
// namespace; nothing is written and Commit records it here). A shared writer that is written
// to after all (the expected size is advisory, as in containerd) becomes a backend writer that
// starts with a copy of the shared blob, so the new data is appended to it.
class NamespacedWriter final : public content::Writer {
 public:
  NamespacedWriter(Db& db, content::Store& backend, Context ctx, std::string ref, std::string bref,
                   std::unique_ptr<content::Writer> w, Descriptor shared_desc)
      : db_(db),
        backend_(backend),
        ctx_(std::move(ctx)),
        ref_(std::move(ref)),
        bref_(std::move(bref)),
        w_(std::move(w)),
        shared_(std::move(shared_desc)),
        started_(Now()) {}

  berth::Status Write(std::string_view data) override {
    if (data.empty()) return Ok();
    // Copying takes the backend ingest's lock; an empty write (a whole-blob writer skipping
    // what the shared blob already holds) must not, or writers of the same blob in concurrent
    // pulls would fail with Unavailable instead of all committing the shared blob.
    if (!w_) BERTH_TRY(CopyShared());
    return w_->Write(data);
  }

  berth::Digest Digest() const override { return w_ ? w_->Digest() : shared_.digest; }

  berth::Status Commit(int64_t size, const berth::Digest& expected, const Labels& labels) override {
    BERTH_TRY(labels::ValidateAll(labels));
    std::shared_lock gc(db_.GcLock());
    berth::Digest actual;
    if (!w_) {
      if (size != 0 && size != shared_.size) {
        return FailedPrecondition(
            fmt::format("{:?} failed size validation: {} != {}", ref_, shared_.size, size));
      }
      if (!expected.Empty() && expected != shared_.digest) {
        return FailedPrecondition(fmt::format("{:?} unexpected digest", ref_));
      }
      size = shared_.size;
      actual = shared_.digest;
    } else {
      BERTH_ASSIGN_OR_RETURN(content::Status st, w_->Status());
      if (size != 0 && size != st.offset) {
        (void)w_->Close();
        return FailedPrecondition(
            fmt::format("{:?} failed size validation: {} != {}", ref_, st.offset, size));
      }
      size = st.offset;
      auto committed = w_->Commit(size, expected, {});
      if (!committed && !committed.error().Is(Errc::kAlreadyExists)) {
        return committed;
      }
      actual = w_->Digest();
    }
    const std::string& ns = ctx_.ns;
    bool already = false;
    BERTH_TRY(db_.Update([&](Txn& txn) -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(auto existing, ReadBlob(txn, ns, actual));
      if (existing) {
        // Committed meanwhile by another writer: still hold it in this request's lease and
        // drop the ingest (as containerd), then report AlreadyExists.
        already = true;
        BERTH_TRY(LeaseStore::RemoveFromContextLease(txn, ctx_, {"ingests"}, ref_));
        BERTH_TRY(LeaseStore::AddToContextLease(txn, ctx_, {"content"}, actual.String()));
        return txn.DeleteTree(IngestKey(ns, ref_));
      }
      Timestamp now = Now();
      BERTH_TRY(WriteBlob(txn, ns,
                          {.digest = actual,
                           .size = size,
                           .created_at = now,
                           .updated_at = now,
                           .labels = labels}));
      BERTH_TRY(LeaseStore::RemoveFromContextLease(txn, ctx_, {"ingests"}, ref_));
      BERTH_TRY(LeaseStore::AddToContextLease(txn, ctx_, {"content"}, actual.String()));
      return txn.DeleteTree(IngestKey(ns, ref_));
    }));
    if (already) return AlreadyExists(fmt::format("content {}", actual.String()));
    return Ok();
  }

  Result<content::Status> Status() const override {
    if (!w_) {
      return content::Status{.ref = ref_,
                             .offset = shared_.size,
                             .total = shared_.size,
                             .expected = shared_.digest,
                             .started_at = started_,
                             .updated_at = started_};
    }
    BERTH_ASSIGN_OR_RETURN(content::Status st, w_->Status());
    st.ref = ref_;
    return st;
  }

  berth::Status Truncate(int64_t size) override {
    if (!w_) return NotImplemented("truncate of shared content");
    return w_->Truncate(size);
  }

  berth::Status Close() override { return w_ ? w_->Close() : Ok(); }

 private:
  // containerd's namespacedWriter.createAndCopy: a backend ingest holding the shared blob.
  berth::Status CopyShared() {
    BERTH_ASSIGN_OR_RETURN(auto w, backend_.Writer({}, {.ref = bref_}));
    if (auto st = w->Truncate(0); !st) return st;
    BERTH_ASSIGN_OR_RETURN(auto ra, backend_.ReaderAt({}, shared_));
    std::string buf(1 << 20, '\0');
    for (int64_t off = 0; off < shared_.size;) {
      size_t want = static_cast<size_t>(std::min<int64_t>(shared_.size - off, buf.size()));
      BERTH_ASSIGN_OR_RETURN(size_t n, ra->ReadAt(buf.data(), want, off));
      if (n == 0) {
        return Unknown(fmt::format("copy of {} for ref {:?}: short read at {}",
                                   shared_.digest.String(), ref_, off));
      }
      BERTH_TRY(w->Write(std::string_view(buf.data(), n)));
      off += static_cast<int64_t>(n);
    }
    // The ingest is the backend's now (Status, Abort and GC follow it); the shared blob was
    // held by the ingest's "expected" until the copy was complete.
    BERTH_TRY(db_.Update([&](Txn& txn) -> berth::Status {
      return txn.DeleteTree(IngestKey(ctx_.ns, ref_, {"expected"}));
    }));
    w_ = std::move(w);
    return Ok();
  }

  Db& db_;
  content::Store& backend_;
  Context ctx_;
  std::string ref_;
  std::string bref_;  // the backend ingest's ref, for CopyShared
  std::unique_ptr<content::Writer> w_;
  Descriptor shared_;
  Timestamp started_;
};

}  // namespace

ContentStore::ContentStore(Db& db) : db_(db), backend_(*db.ContentBackend()) {}

Result<content::Info> ContentStore::Info(const Context& ctx, const Digest& dgst) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<content::Info> info;
  BERTH_TRY(db_.View([&](const Txn& txn) -> berth::Status {
    BERTH_ASSIGN_OR_RETURN(info, ReadBlob(txn, ns, dgst));
    return Ok();
  }));
  if (!info) return NotFound(fmt::format("content digest {}", dgst.String()));
  return *info;
}

Result<content::Info> ContentStore::Update(const Context& ctx, const content::Info& in,
                                           const std::vector<std::string>& fieldpaths) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(labels::ValidateAll(in.labels));
  content::Info out;
  BERTH_TRY(db_.Update([&](Txn& txn) -> berth::Status {
    BERTH_ASSIGN_OR_RETURN(auto cur, ReadBlob(txn, ns, in.digest));
    if (!cur) return NotFound(fmt::format("content digest {}", in.digest.String()));
    out = *cur;
    if (fieldpaths.empty()) {
      out.labels = in.labels;
    }
    for (const auto& path : fieldpaths) {
      if (path.rfind("labels.", 0) == 0) {
        std::string key = path.substr(7);
        auto it = in.labels.find(key);
        if (it == in.labels.end() || it->second.empty()) {
          out.labels.erase(key);
        } else {
          out.labels[key] = it->second;
        }
      } else if (path == "labels") {
        out.labels = in.labels;
      } else {
        return InvalidArgument(
            fmt::format("cannot update {:?} field on content info {:?}", path, in.digest.String()));
      }
    }
    std::erase_if(out.labels, [](const auto& kv) { return kv.second.empty(); });
    out.updated_at = Now();
    return WriteBlob(txn, ns, out);
  }));
  // Labels can add or drop gc references.
  db_.NotifyMutation(false);
  return out;
}

berth::Status ContentStore::Walk(const Context& ctx,
                                 const std::function<berth::Status(const content::Info&)>& fn,
                                 const std::vector<std::string>& filter_strings) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
  std::vector<content::Info> infos;
  BERTH_TRY(db_.View([&](const Txn& txn) -> berth::Status {
    for (const auto& d : txn.Children(NsKey(ns, {kBucketContent, "blob"}))) {
      auto dgst = Digest::Parse(d);
      if (!dgst) continue;
      BERTH_ASSIGN_OR_RETURN(auto info, ReadBlob(txn, ns, *dgst));
      if (!info) continue;
      auto adaptor = filters::MakeAdaptor(
          {{"digest", info->digest.String()}, {"size", std::to_string(info->size)}},
          {{"labels", &info->labels}}, filters::EmptyField::kPresent);
      if (filter.Match(adaptor)) infos.push_back(std::move(*info));
    }
    return Ok();
  }));
  // fn runs outside the transaction: it may be slow (a stream to a client).
  for (const auto& info : infos) BERTH_TRY(fn(info));
  return Ok();
}

berth::Status ContentStore::Delete(const Context& ctx, const Digest& dgst) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(db_.Update([&](Txn& txn) -> berth::Status {
    BERTH_ASSIGN_OR_RETURN(auto info, ReadBlob(txn, ns, dgst));
    if (!info) return NotFound(fmt::format("content digest {}", dgst.String()));
    BERTH_TRY(txn.DeleteTree(BlobKey(ns, dgst)));
    return LeaseStore::RemoveFromContextLease(txn, ctx, {"content"}, dgst.String());
  }));
  db_.NotifyMutation(true);
  return Ok();
}

Result<std::unique_ptr<content::ReaderAt>> ContentStore::ReaderAt(const Context& ctx,
                                                                  const Descriptor& desc) {
  BERTH_TRY(Info(ctx, desc.digest));
  return backend_.ReaderAt(ctx, desc);
}

Result<content::Status> ContentStore::Status(const Context& ctx, const std::string& ref) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<std::string> bref;
  std::optional<std::string> expected;
  BERTH_TRY(db_.View([&](const Txn& txn) -> berth::Status {
    BERTH_ASSIGN_OR_RETURN(bref, txn.Get(IngestKey(ns, ref, {"ref"})));
    BERTH_ASSIGN_OR_RETURN(expected, txn.Get(IngestKey(ns, ref, {"expected"})));
    return Ok();
  }));
  if (!bref) return NotFound(fmt::format("reference {}", ref));
  if (expected) {
    BERTH_ASSIGN_OR_RETURN(Digest d, Digest::Parse(*expected));
    BERTH_ASSIGN_OR_RETURN(content::Info info, backend_.Info({}, d));
    return content::Status{.ref = ref,
                           .offset = info.size,
                           .total = info.size,
                           .expected = d,
                           .started_at = info.created_at,
                           .updated_at = info.created_at};
  }
  auto st = backend_.Status({}, *bref);
  if (!st)
    return std::move(st).error().Is(Errc::kNotFound)
               ? Result<content::Status>(NotFound(fmt::format("reference {}", ref)))
               : Result<content::Status>(std::move(st).error());
  st->ref = ref;
  return st;
}

Result<std::vector<content::Status>> ContentStore::ListStatuses(
    const Context& ctx, const std::vector<std::string>& filter_strings) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
  std::vector<std::string> refs;
  BERTH_TRY(db_.View([&](const Txn& txn) -> berth::Status {
    refs = txn.Children(NsKey(ns, {kBucketContent, "ingests"}));
    return Ok();
  }));
  std::vector<content::Status> out;
  for (const auto& ref : refs) {
    auto adaptor = filters::MakeAdaptor({{"ref", ref}}, {}, filters::EmptyField::kPresent);
    if (!filter.Match(adaptor)) continue;
    auto st = Status(ctx, ref);
    if (st) out.push_back(std::move(*st));  // an ingest that vanished meanwhile is skipped
  }
  return out;
}

berth::Status ContentStore::Abort(const Context& ctx, const std::string& ref) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<std::string> bref;
  std::optional<std::string> expected;
  BERTH_TRY(db_.Update([&](Txn& txn) -> berth::Status {
    BERTH_ASSIGN_OR_RETURN(bref, txn.Get(IngestKey(ns, ref, {"ref"})));
    if (!bref) return NotFound(fmt::format("reference {}", ref));
    BERTH_ASSIGN_OR_RETURN(expected, txn.Get(IngestKey(ns, ref, {"expected"})));
    BERTH_TRY(txn.DeleteTree(IngestKey(ns, ref)));
    return LeaseStore::RemoveFromContextLease(txn, ctx, {"ingests"}, ref);
  }));
  if (!expected) {
    auto s = backend_.Abort({}, *bref);
    if (!s && !s.error().Is(Errc::kNotFound)) return s;
  }
  return Ok();
}

Result<std::unique_ptr<content::Writer>> ContentStore::Writer(const Context& ctx,
                                                              const content::WriterOptions& opts) {
  if (opts.ref.empty()) return InvalidArgument("ref must not be empty");
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::shared_lock gc(db_.GcLock());
  bool exists = false;
  bool shared = false;
  Descriptor desc = opts.desc;
  std::string bref;
  BERTH_TRY(db_.Update([&](Txn& txn) -> berth::Status {
    BERTH_TRY(NamespaceStore::CreateIfMissing(txn, ns));
    if (!desc.digest.Empty()) {
      BERTH_ASSIGN_OR_RETURN(auto mine, ReadBlob(txn, ns, desc.digest));
      if (mine) {
        // Keep it in the request's lease, then report AlreadyExists after committing that.
        BERTH_TRY(LeaseStore::AddToContextLease(txn, ctx, {"content"}, desc.digest.String()));
        exists = true;
        return Ok();
      }
      auto backend_info = backend_.Info({}, desc.digest);
      if (backend_info && (desc.size <= 0 || desc.size == backend_info->size)) {
        shared = true;
        desc.size = backend_info->size;
      }
    }
    BERTH_ASSIGN_OR_RETURN(auto existing_bref, txn.Get(IngestKey(ns, opts.ref, {"ref"})));
    if (existing_bref) {
      bref = *existing_bref;
    } else {
      BERTH_ASSIGN_OR_RETURN(uint64_t seq, Db::NextSequence(txn));
      bref = fmt::format("{}/{}/{}", ns, seq, opts.ref);
      BERTH_TRY(txn.Put(IngestKey(ns, opts.ref, {"ref"}), bref));
    }
    if (ctx.lease.empty()) {
      BERTH_TRY(txn.Put(IngestKey(ns, opts.ref, {"expireat"}), EncodeTime(Now() + kIngestExpiry)));
    } else {
      BERTH_TRY(LeaseStore::AddToContextLease(txn, ctx, {"ingests"}, opts.ref));
      BERTH_TRY(txn.DeleteTree(IngestKey(ns, opts.ref, {"expireat"})));
    }
    if (shared) {
      BERTH_TRY(txn.Put(IngestKey(ns, opts.ref, {"expected"}), desc.digest.String()));
    }
    return Ok();
  }));
  if (exists) return AlreadyExists(fmt::format("content {}", desc.digest.String()));
  if (shared) {
    return std::unique_ptr<content::Writer>(
        std::make_unique<NamespacedWriter>(db_, backend_, ctx, opts.ref, bref, nullptr, desc));
  }
  // The backend never sees the expected digest: content must be committed in this namespace
  // before it counts as present here.
  Descriptor backend_desc = desc;
  backend_desc.digest = {};
  BERTH_ASSIGN_OR_RETURN(auto w, backend_.Writer({}, {.ref = bref, .desc = backend_desc}));
  return std::unique_ptr<content::Writer>(std::make_unique<NamespacedWriter>(
      db_, backend_, ctx, opts.ref, bref, std::move(w), Descriptor{}));
}

}  // namespace berth::metadata
