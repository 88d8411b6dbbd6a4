#include <unistd.h>

#include "metadata/leases.h"
#include "metadata/testing.h"

namespace berth::metadata {
namespace {

class ContentStoreTest : public MetadataFixture {};

TEST_F(ContentStoreTest, NamespacesIsolateButShareBlobs) {
  Digest d = Put("a", "shared bytes");
  Context a{.ns = "a"};
  Context b{.ns = "b"};
  EXPECT_TRUE(cs_->Info(a, d));
  auto missing = cs_->Info(b, d);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
  // Writing the same blob into b commits without data (shared).
  auto w = cs_->Writer(b, {.ref = "r", .desc = {.digest = d, .size = 12}});
  ASSERT_TRUE(w) << w.error().ToString();
  auto st = (*w)->Status();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->offset, 12);
  EXPECT_EQ(st->total, 12);
  ASSERT_TRUE((*w)->Commit(12, d, {}));
  auto info = cs_->Info(b, d);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 12);
  // Writing it again in a namespace that has it is AlreadyExists.
  auto again = cs_->Writer(a, {.ref = "r2", .desc = {.digest = d}});
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().Is(Errc::kAlreadyExists));
}

// Concurrent pulls of one blob that another namespace has: every writer of the ref commits the
// shared blob without data, and an empty write does not take the backend's ingest lock (it
// did, and the second puller's write failed with Unavailable "ref ... locked").
TEST_F(ContentStoreTest, ConcurrentWritersOfASharedBlobAllCommit) {
  Digest d = Put("a", "shared bytes");
  Context b{.ns = "b"};
  auto w1 = cs_->Writer(b, {.ref = "same", .desc = {.digest = d, .size = 12}});
  ASSERT_TRUE(w1) << w1.error().ToString();
  auto w2 = cs_->Writer(b, {.ref = "same", .desc = {.digest = d, .size = 12}});
  ASSERT_TRUE(w2) << w2.error().ToString();
  ASSERT_TRUE((*w1)->Write(""));
  auto second = (*w2)->Write("");
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_TRUE((*w1)->Commit(12, d, {}));
  auto late = (*w2)->Commit(12, d, {});
  ASSERT_FALSE(late);
  EXPECT_TRUE(late.error().Is(Errc::kAlreadyExists)) << late.error().ToString();
  EXPECT_TRUE(cs_->Info(b, d));
}

// containerd's content conformance (testCrossNSAppend): the expected descriptor is advisory. A
// writer opened in b for a blob a has may append to it, and commits another blob with the
// larger size; a's blob is untouched.
TEST_F(ContentStoreTest, WriterForSharedBlobMayAppendPastIt) {
  Digest d = Put("a", "shared bytes");
  Context b{.ns = "b"};
  auto w = cs_->Writer(b, {.ref = "append", .desc = {.digest = d, .size = 12}});
  ASSERT_TRUE(w) << w.error().ToString();
  ASSERT_TRUE((*w)->Write(" and more")) << "appending to a shared blob";
  auto st = cs_->Status(b, "append");
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->offset, 21) << "the ingest now holds the copy and the appended bytes";
  Digest grown = Digest::FromBytes("shared bytes and more");
  auto wrong = (*w)->Commit(12, d, {});
  ASSERT_FALSE(wrong) << "the advisory size does not hold at commit";
  EXPECT_TRUE(wrong.error().Is(Errc::kFailedPrecondition)) << wrong.error().ToString();
  auto w2 = cs_->Writer(b, {.ref = "append", .desc = {.digest = d, .size = 12}});
  ASSERT_TRUE(w2) << w2.error().ToString();
  ASSERT_TRUE((*w2)->Write(" and more"));
  ASSERT_TRUE((*w2)->Commit(21, grown, {}));
  auto info = cs_->Info(b, grown);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->size, 21);
  EXPECT_FALSE(cs_->Info(b, d)) << "b never committed the original";
  auto orig = cs_->Info({.ns = "a"}, d);
  ASSERT_TRUE(orig);
  EXPECT_EQ(orig->size, 12);
}

TEST_F(ContentStoreTest, RequiresNamespace) {
  auto r = cs_->Info({}, Digest::FromBytes("x"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kFailedPrecondition));
}

TEST_F(ContentStoreTest, LabelsUpdateAndWalkFilters) {
  Digest d1 = Put("ns", "one", {{"k", "v"}});
  Digest d2 = Put("ns", "two");
  Context ctx{.ns = "ns"};
  auto up = cs_->Update(ctx, {.digest = d2, .labels = {{"k", "w"}, {"x", "1"}}}, {"labels.k"});
  ASSERT_TRUE(up) << up.error().ToString();
  EXPECT_EQ(up->labels, (Labels{{"k", "w"}}));
  std::vector<std::string> seen;
  ASSERT_TRUE(cs_->Walk(ctx,
                        [&](const content::Info& i) {
                          seen.push_back(i.digest.String());
                          return Ok();
                        },
                        {"labels.k==v"}));
  EXPECT_EQ(seen, std::vector<std::string>{d1.String()});
  auto bad = cs_->Update(ctx, {.digest = d1}, {"size"});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
}

TEST_F(ContentStoreTest, IngestStatusResumeAndAbort) {
  Context ctx{.ns = "ns"};
  std::string data = "0123456789";
  Digest d = Digest::FromBytes(data);
  {
    auto w = cs_->Writer(ctx, {.ref = "layer-1", .desc = {.size = 10}});
    ASSERT_TRUE(w) << w.error().ToString();
    ASSERT_TRUE((*w)->Write(data.substr(0, 4)));
    ASSERT_TRUE((*w)->Close());
  }
  auto st = cs_->Status(ctx, "layer-1");
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->ref, "layer-1");
  EXPECT_EQ(st->offset, 4);
  auto list = cs_->ListStatuses(ctx, {"ref~=layer"});
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
  EXPECT_FALSE(cs_->Status({.ns = "other"}, "layer-1")) << "ingests are namespaced";
  {
    auto w = cs_->Writer(ctx, {.ref = "layer-1", .desc = {.size = 10}});
    ASSERT_TRUE(w);
    EXPECT_EQ((*w)->Status()->offset, 4) << "resumed";
    ASSERT_TRUE((*w)->Write(data.substr(4)));
    ASSERT_TRUE((*w)->Commit(10, d, {}));
  }
  EXPECT_FALSE(cs_->Status(ctx, "layer-1")) << "committed ingests are gone";
  auto w = cs_->Writer(ctx, {.ref = "to-abort"});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->Write("xx"));
  ASSERT_TRUE((*w)->Close());
  ASSERT_TRUE(cs_->Abort(ctx, "to-abort"));
  auto gone = cs_->Abort(ctx, "to-abort");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().Is(Errc::kNotFound));
}

TEST_F(ContentStoreTest, CommitMismatchIsFailedPrecondition) {
  Context ctx{.ns = "ns"};
  auto w = cs_->Writer(ctx, {.ref = "bad"});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->Write("abc"));
  auto s = (*w)->Commit(3, Digest::FromBytes("abd"), {});
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kFailedPrecondition)) << s.error().ToString();
  EXPECT_FALSE(cs_->Info(ctx, Digest::FromBytes("abc")));
  EXPECT_FALSE(cs_->Info(ctx, Digest::FromBytes("abd")));
}

TEST_F(ContentStoreTest, LeaseCollectsWhatItsRequestsCreate) {
  LeaseStore leases(*db_);
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(leases.Create(ctx, "l1", {}));
  Digest d = Put("ns", "leased", {}, "l1");
  auto rs = leases.ListResources(ctx, "l1");
  ASSERT_TRUE(rs);
  ASSERT_EQ(rs->size(), 1u);
  EXPECT_EQ((*rs)[0].type, "content");
  EXPECT_EQ((*rs)[0].id, d.String());
  auto w = cs_->Writer({.ns = "ns", .lease = "nope"}, {.ref = "x"});
  ASSERT_FALSE(w);
  EXPECT_TRUE(w.error().Is(Errc::kNotFound));
  EXPECT_NE(w.error().ToString().find("lease does not exist"), std::string::npos);
}

TEST_F(ContentStoreTest, RacingCommitOfTheSameBlobStillJoinsTheLease) {
  LeaseStore leases(*db_);
  Context ctx{.ns = "ns", .lease = "l2"};
  ASSERT_TRUE(leases.Create(ctx, "l2", {}));
  // Two writers of the same bytes; the first commits while the second is open.
  auto w1 = cs_->Writer({.ns = "ns"}, {.ref = "one"});
  auto w2 = cs_->Writer(ctx, {.ref = "two"});
  ASSERT_TRUE(w1 && w2);
  ASSERT_TRUE((*w1)->Write("same"));
  ASSERT_TRUE((*w2)->Write("same"));
  ASSERT_TRUE((*w1)->Commit(4, Digest::FromBytes("same"), {}));
  auto s = (*w2)->Commit(4, Digest::FromBytes("same"), {});
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kAlreadyExists));
  auto rs = leases.ListResources(ctx, "l2");
  ASSERT_TRUE(rs);
  ASSERT_EQ(rs->size(), 1u) << "the blob is held by the second writer's lease";
  EXPECT_EQ((*rs)[0].type, "content");
  EXPECT_FALSE(cs_->Status({.ns = "ns"}, "two")) << "its ingest is gone";
}

TEST_F(ContentStoreTest, DeleteRemovesRecordOnly) {
  Digest d = Put("ns", "bytes");
  ASSERT_TRUE(cs_->Delete({.ns = "ns"}, d));
  EXPECT_FALSE(cs_->Info({.ns = "ns"}, d));
  EXPECT_TRUE(OnDisk(d)) << "the backend file waits for GC";
  EXPECT_TRUE(cs_->Delete({.ns = "ns"}, d).error().Is(Errc::kNotFound));
}

TEST_F(ContentStoreTest, ReadBack) {
  Digest d = Put("ns", "hello world");
  auto r = cs_->ReaderAt({.ns = "ns"}, {.digest = d});
  ASSERT_TRUE(r);
  char buf[5];
  auto n = (*r)->ReadAt(buf, 5, 6);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "world");
  EXPECT_FALSE(cs_->ReaderAt({.ns = "other"}, {.digest = d}));
}

}  // namespace
}  // namespace berth::metadata
