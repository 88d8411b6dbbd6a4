// LocalStore as a whole: walk, info, delete, readers, statuses, on-disk layout, cleanup.
#include <sys/stat.h>

#include <set>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "content/local/ingest.h"
#include "content/local/store.h"
#include "content/local/store_test_util.h"

namespace berth::content::test {
namespace {

using namespace std::chrono_literals;

TEST_F(LocalStoreTest, WalkInfoDelete) {
  Digest a = Commit("a", "alpha");
  Digest b = Commit("b", "bravo");
  Digest c = Commit("c", "charlie");
  // Not a digest: ignored by Walk.
  ASSERT_TRUE(fs::WriteFileAtomic(store_->Root() + "/blobs/sha256/not-a-digest", "x"));

  auto all = WalkAll();
  EXPECT_EQ(std::set<Digest>(all.begin(), all.end()), (std::set<Digest>{a, b, c}));
  EXPECT_EQ(WalkAll({"digest==" + b.String()}), std::vector<Digest>{b});
  EXPECT_EQ(WalkAll({"digest==" + b.String(), "digest==" + c.String()}).size(), 2u);
  EXPECT_TRUE(WalkAll({"size==5"}).empty()) << "size is never present, as containerd";
  EXPECT_TRUE(WalkAll({"labels.x"}).empty());
  auto bad = store_->Walk(ctx_, [](const Info&) { return Ok(); }, {"digest=="});
  EXPECT_TRUE(!bad && bad.error().Is(Errc::kInvalidArgument));

  int calls = 0;
  auto stopped = store_->Walk(ctx_,
                              [&](const Info&) -> berth::Status {
                                ++calls;
                                return Unavailable("stop");
                              },
                              {});
  ASSERT_FALSE(stopped);
  EXPECT_TRUE(stopped.error().Is(Errc::kUnavailable));
  EXPECT_EQ(calls, 1);

  // fn may delete what it is given (the GC does).
  ASSERT_TRUE(store_->Walk(ctx_,
                           [&](const Info& info) { return store_->Delete(ctx_, info.digest); },
                           {"digest==" + a.String()}));
  auto info = store_->Info(ctx_, a);
  ASSERT_FALSE(info);
  EXPECT_TRUE(info.error().Is(Errc::kNotFound));
  EXPECT_EQ(info.error().ToString(), "content " + a.String() + ": not found");
  auto again = store_->Delete(ctx_, a);
  EXPECT_TRUE(!again && again.error().Is(Errc::kNotFound));
  EXPECT_EQ(WalkAll().size(), 2u);
  EXPECT_EQ(store_->Info(ctx_, b)->size, 5);
}

TEST_F(LocalStoreTest, InvalidArguments) {
  auto w = store_->Writer(ctx_, {.ref = ""});
  EXPECT_TRUE(!w && w.error().Is(Errc::kInvalidArgument));
  auto info = store_->Info(ctx_, Digest{});
  EXPECT_TRUE(!info && info.error().Is(Errc::kInvalidArgument));
  auto del = store_->Delete(ctx_, Digest{});
  EXPECT_TRUE(!del && del.error().Is(Errc::kInvalidArgument));
  auto ra = store_->ReaderAt(ctx_, {});
  EXPECT_TRUE(!ra && ra.error().Is(Errc::kInvalidArgument));
  auto st = store_->Status(ctx_, "");
  EXPECT_TRUE(!st && st.error().Is(Errc::kInvalidArgument));
  for (const char* text : {"sha256:XYZ", "md5:abc", "sha256:" /* empty hex */, "nocolon"}) {
    auto d = Digest::Parse(text);
    EXPECT_TRUE(!d && d.error().Is(Errc::kInvalidArgument)) << text;
  }
}

TEST_F(LocalStoreTest, UpdateIsFailedPrecondition) {
  Digest d = Commit("a", "alpha");
  auto up = store_->Update(ctx_, {.digest = d, .labels = {{"k", "v"}}}, {"labels.k"});
  ASSERT_FALSE(up);
  EXPECT_TRUE(up.error().Is(Errc::kFailedPrecondition)) << up.error().ToString();
}

TEST_F(LocalStoreTest, StatusAndListStatuses) {
  {
    auto w1 = OpenWriter("layer-a", 100);
    auto w2 = OpenWriter("layer-b");
    auto w3 = OpenWriter("config-c");
    ASSERT_TRUE(w1 && w2 && w3);
    ASSERT_TRUE(w1->Write("0123456789"));
    ASSERT_TRUE(w1->Close());
    // w2 and w3 stay open: their ingests are listed too.
    auto st = store_->Status(ctx_, "layer-a");
    ASSERT_TRUE(st) << st.error().ToString();
    EXPECT_EQ(st->ref, "layer-a");
    EXPECT_EQ(st->offset, 10);
    EXPECT_EQ(st->total, 100);
    EXPECT_LE(st->started_at, st->updated_at);

    auto refs = [&](const std::vector<std::string>& filters) {
      auto list = store_->ListStatuses(ctx_, filters);
      EXPECT_TRUE(list) << list.error().ToString();
      std::set<std::string> out;
      for (const auto& s : *list) out.insert(s.ref);
      return out;
    };
    EXPECT_EQ(refs({}), (std::set<std::string>{"layer-a", "layer-b", "config-c"}));
    EXPECT_EQ(refs({"ref~=^layer-"}), (std::set<std::string>{"layer-a", "layer-b"}));
    EXPECT_EQ(refs({"ref==config-c"}), (std::set<std::string>{"config-c"}));
    EXPECT_EQ(refs({"ref==config-c", "ref==layer-b"}),
              (std::set<std::string>{"config-c", "layer-b"}));
    EXPECT_EQ(refs({"ref!=layer-a"}), (std::set<std::string>{"layer-b", "config-c"}));
    EXPECT_TRUE(refs({"ref==nope"}).empty());
    auto bad = store_->ListStatuses(ctx_, {"ref=="});
    EXPECT_TRUE(!bad && bad.error().Is(Errc::kInvalidArgument));

    std::set<std::string> walked;
    ASSERT_TRUE(store_->WalkStatusRefs([&](const std::string& ref) {
      walked.insert(ref);
      return Ok();
    }));
    EXPECT_EQ(walked, (std::set<std::string>{"layer-a", "layer-b", "config-c"}));
  }
  auto missing = store_->Status(ctx_, "never");
  EXPECT_TRUE(!missing && missing.error().Is(Errc::kNotFound));
}

TEST_F(LocalStoreTest, ReaderAtOffsets) {
  std::string data = MakeContent(10'000, 7);
  Digest d = Commit("r", data);
  auto ra = store_->ReaderAt(ctx_, {.digest = d, .size = 10'000});
  ASSERT_TRUE(ra);
  EXPECT_EQ((*ra)->Size(), 10'000);
  std::string buf(4096, '\0');
  auto n = (*ra)->ReadAt(buf.data(), 100, 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 100u);
  EXPECT_EQ(buf.substr(0, 100), data.substr(0, 100));
  n = (*ra)->ReadAt(buf.data(), 1000, 5000);
  ASSERT_TRUE(n);
  EXPECT_EQ(buf.substr(0, 1000), data.substr(5000, 1000));
  n = (*ra)->ReadAt(buf.data(), 4096, 9000);  // runs past the end: short read
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1000u);
  EXPECT_EQ(buf.substr(0, 1000), data.substr(9000));
  n = (*ra)->ReadAt(buf.data(), 10, 10'000);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  n = (*ra)->ReadAt(buf.data(), 10, 20'000);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  auto neg = (*ra)->ReadAt(buf.data(), 10, -1);
  EXPECT_TRUE(!neg && neg.error().Is(Errc::kInvalidArgument));

  // An open reader survives Delete; a new one is NotFound.
  ASSERT_TRUE(store_->Delete(ctx_, d));
  n = (*ra)->ReadAt(buf.data(), 10, 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(buf.substr(0, 10), data.substr(0, 10));
  auto gone = store_->ReaderAt(ctx_, {.digest = d});
  EXPECT_TRUE(!gone && gone.error().Is(Errc::kNotFound));
}

TEST_F(LocalStoreTest, OnDiskLayout) {
  const std::string ref = "manifest-sha256:abc";
  const std::string dir = IngestPath(ref);
  EXPECT_EQ(dir, store_->Root() + "/ingest/" +
                     std::string(Digest::FromBytes("manifest-sha256:abc").Encoded()));
  std::string data = "layout check";
  Digest d = Digest::FromBytes(data);
  Timestamp before_start = Now();
  auto w = OpenWriter(ref, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w);
  Timestamp after_start = Now();
  EXPECT_EQ(ListNames(dir),
            (std::vector<std::string>{"data", "ref", "startedat", "total", "updatedat"}));
  EXPECT_EQ(*fs::ReadFile(dir + "/ref"), ref);
  EXPECT_EQ(*fs::ReadFile(dir + "/total"), std::to_string(data.size()));
  auto started = ParseRfc3339(*fs::ReadFile(dir + "/startedat"));
  ASSERT_TRUE(started);
  EXPECT_GE(*started, before_start);
  EXPECT_LE(*started, after_start);
  EXPECT_EQ(*started, w->Status()->started_at);
  EXPECT_TRUE(ParseRfc3339(*fs::ReadFile(dir + "/updatedat")));
  ASSERT_TRUE(w->Write(data));
  EXPECT_EQ(*fs::ReadFile(dir + "/data"), data);

  auto no_total = OpenWriter("unknown-size");
  ASSERT_TRUE(no_total);
  EXPECT_FALSE(Exists(IngestPath("unknown-size") + "/total"));

  Timestamp before_commit = Now();
  ASSERT_TRUE(w->Commit(0, {}, {}));
  Timestamp after_commit = Now();
  std::string blob = BlobPath(d);
  struct stat st {};
  ASSERT_EQ(::stat(blob.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  EXPECT_GE(local::FromTimespec(st.st_mtim), before_commit);
  EXPECT_LE(local::FromTimespec(st.st_mtim), after_commit);
  EXPECT_EQ(*fs::ReadFile(blob), data);
  EXPECT_FALSE(Exists(dir));
  EXPECT_EQ(ListNames(store_->Root() + "/blobs"), std::vector<std::string>{"sha256"});
}

TEST_F(LocalStoreTest, OpenRemovesLeftovers) {
  {
    auto w = OpenWriter("kept");
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("abc"));
    ASSERT_TRUE(w->Close());
  }
  const std::string kept = IngestPath("kept");
  ASSERT_TRUE(fs::WriteFileAtomic(kept + "/updatedat.tmp", "torn"));
  ASSERT_TRUE(fs::WriteFileAtomic(kept + "/total.tmp", "1"));
  // An ingest torn before its data file was created, and one whose data was already committed.
  const std::string torn = IngestPath("torn");
  ASSERT_TRUE(fs::MkdirAll(torn, 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(torn + "/ref", "torn"));
  const std::string committed = IngestPath("committed");
  ASSERT_TRUE(fs::MkdirAll(committed, 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(committed + "/ref", "committed"));
  ASSERT_TRUE(fs::WriteFileAtomic(committed + "/startedat", FormatRfc3339Nano(Now())));

  Reopen();
  EXPECT_EQ(ListNames(kept), (std::vector<std::string>{"data", "ref", "startedat", "updatedat"}));
  EXPECT_FALSE(Exists(torn));
  EXPECT_FALSE(Exists(committed));
  auto w = OpenWriter("kept");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Status()->offset, 3);
}

TEST_F(LocalStoreTest, CleanupIngests) {
  for (const char* ref : {"old", "fresh", "old-but-held"}) {
    auto w = OpenWriter(ref);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("abc"));
    ASSERT_TRUE(w->Close());
  }
  Timestamp long_ago = Now() - 48h;
  for (const char* ref : {"old", "old-but-held"}) {
    ASSERT_TRUE(local::WriteTimestampFile(IngestPath(ref) + "/updatedat", long_ago));
    SetMtime(IngestPath(ref) + "/data", long_ago);
  }
  // A torn ingest (no data) is judged by its directory's mtime.
  const std::string torn = IngestPath("torn");
  ASSERT_TRUE(fs::MkdirAll(torn, 0755));
  SetMtime(torn, long_ago);

  auto held = OpenWriter("old-but-held");
  ASSERT_TRUE(held);
  auto st = store_->Status(ctx_, "old");
  ASSERT_TRUE(st);
  EXPECT_LT(st->updated_at, Now() - 24h);

  ASSERT_TRUE(store_->CleanupIngests(Now() - 24h));
  EXPECT_FALSE(Exists(IngestPath("old")));
  EXPECT_FALSE(Exists(torn));
  EXPECT_TRUE(Exists(IngestPath("fresh")));
  EXPECT_TRUE(Exists(IngestPath("old-but-held"))) << "a held ingest is never removed";

  ASSERT_TRUE(held->Close());
  ASSERT_TRUE(store_->CleanupIngests(Now() + 1h));
  EXPECT_TRUE(ListNames(store_->Root() + "/ingest").empty());
}

}  // namespace
}  // namespace berth::content::test
