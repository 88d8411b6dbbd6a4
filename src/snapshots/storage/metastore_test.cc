#include "snapshots/storage/metastore.h"

#include <gtest/gtest.h>

#include <string>

#include "common/fs.h"

namespace berth::snapshots::storage {
namespace {

class MetaStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("metastore-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    Reopen();
  }
  void Reopen() {
    ms_.reset();
    auto ms = MetaStore::Open(tmp_->Path() + "/metadata.db");
    ASSERT_TRUE(ms) << ms.error().ToString();
    ms_ = std::move(*ms);
  }
  Result<Snapshot> Create(Kind kind, const std::string& key, const std::string& parent) {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
    BERTH_ASSIGN_OR_RETURN(auto s, t.CreateSnapshot(kind, key, parent, {}));
    BERTH_TRY(t.Commit());
    return s;
  }
  Status CommitKey(const std::string& key, const std::string& name) {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
    BERTH_TRY(t.CommitActive(key, name, {.inodes = 3, .size = 4096}, {}));
    return t.Commit();
  }

  std::unique_ptr<fs::TempDir> tmp_;
  std::unique_ptr<MetaStore> ms_;
};

TEST_F(MetaStoreTest, ChainsAreImmediateParentFirst) {
  auto a = Create(Kind::kActive, "a", "");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->id, "1");
  EXPECT_TRUE(a->parent_ids.empty());
  ASSERT_TRUE(CommitKey("a", "A"));
  ASSERT_TRUE(Create(Kind::kActive, "b", "A"));
  ASSERT_TRUE(CommitKey("b", "B"));
  auto c = Create(Kind::kView, "c", "B");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->id, "3");
  EXPECT_EQ(c->kind, Kind::kView);
  EXPECT_EQ(c->parent_ids, (std::vector<std::string>{"2", "1"}));

  auto t = ms_->BeginRead();
  ASSERT_TRUE(t);
  auto got = t->GetSnapshot("c");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->parent_ids, c->parent_ids);
  auto committed = t->GetSnapshot("B");
  ASSERT_FALSE(committed);
  EXPECT_TRUE(committed.error().Is(Errc::kFailedPrecondition));
  auto info = t->GetInfo("B");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->id, "2");
  EXPECT_EQ(info->usage.inodes, 3);
  EXPECT_EQ(info->usage.size, 4096);
  EXPECT_EQ(info->info.parent, "A");
}

TEST_F(MetaStoreTest, IdsAreNeverReusedAndSurviveReopen) {
  ASSERT_TRUE(Create(Kind::kActive, "a", ""));
  ASSERT_TRUE(Create(Kind::kActive, "b", ""));
  {
    auto t = ms_->BeginWrite();
    ASSERT_TRUE(t);
    auto r = t->Remove("b");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->id, "2");
    EXPECT_EQ(r->kind, Kind::kActive);
    ASSERT_TRUE(t->Commit());
  }
  Reopen();
  auto c = Create(Kind::kActive, "c", "");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, "3");
  auto t = ms_->BeginRead();
  ASSERT_TRUE(t);
  auto ids = t->IdMap();
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::map<std::string, std::string>{{"1", "a"}, {"3", "c"}}));
}

TEST_F(MetaStoreTest, AbortedTransactionLeavesNothing) {
  {
    auto t = ms_->BeginWrite();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->CreateSnapshot(Kind::kActive, "a", "", {{"k", "v"}}));
  }  // not committed
  auto t = ms_->BeginRead();
  ASSERT_TRUE(t);
  auto info = t->GetInfo("a");
  ASSERT_FALSE(info);
  EXPECT_TRUE(info.error().Is(Errc::kNotFound));
  EXPECT_EQ(info.error().ToString(), "snapshot a: not found");
}

TEST_F(MetaStoreTest, CommitMovesChildLinks) {
  ASSERT_TRUE(Create(Kind::kActive, "a", ""));
  ASSERT_TRUE(CommitKey("a", "A"));
  ASSERT_TRUE(Create(Kind::kActive, "b", "A"));
  ASSERT_TRUE(CommitKey("b", "B"));  // A's child is now B, under B's name
  auto t = ms_->BeginWrite();
  ASSERT_TRUE(t);
  auto busy = t->Remove("A");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().ToString(), "cannot remove snapshot with child: failed precondition");
  ASSERT_TRUE(t->Remove("B"));
  ASSERT_TRUE(t->Remove("A"));
  ASSERT_TRUE(t->Commit());
}

TEST_F(MetaStoreTest, Validation) {
  auto t = ms_->BeginWrite();
  ASSERT_TRUE(t);
  auto empty = t->CreateSnapshot(Kind::kActive, "", "", {});
  ASSERT_FALSE(empty);
  EXPECT_TRUE(empty.error().Is(Errc::kInvalidArgument));
  auto long_key = t->CreateSnapshot(Kind::kActive, std::string(600, 'k'), "", {});
  ASSERT_FALSE(long_key);
  EXPECT_TRUE(long_key.error().Is(Errc::kInvalidArgument)) << long_key.error().ToString();
  auto committed = t->CreateSnapshot(Kind::kCommitted, "x", "", {});
  ASSERT_FALSE(committed);
  EXPECT_TRUE(committed.error().Is(Errc::kInvalidArgument));
  auto big_label = t->CreateSnapshot(Kind::kActive, "x", "", {{"k", std::string(5000, 'v')}});
  ASSERT_FALSE(big_label);
  EXPECT_TRUE(big_label.error().Is(Errc::kInvalidArgument));
  ASSERT_TRUE(t->CreateSnapshot(Kind::kActive, std::string(510, 'k'), "", {}));
  auto missing = t->CreateSnapshot(Kind::kActive, "y", "nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().ToString(), "missing parent \"nope\": not found");
  auto ro = ms_->BeginRead();
  ASSERT_TRUE(ro);
  auto denied = ro->Remove("x");
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().Is(Errc::kFailedPrecondition));
}

TEST_F(MetaStoreTest, SecondOpenInProcessIsRefused) {
  auto second = MetaStore::Open(tmp_->Path() + "/metadata.db");
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().Is(Errc::kFailedPrecondition)) << second.error().ToString();
  Reopen();  // after the first closes, it opens again
}

TEST_F(MetaStoreTest, EmptyLabelValuesAreDropped) {
  auto t = ms_->BeginWrite();
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->CreateSnapshot(Kind::kActive, "a", "", {{"keep", "1"}, {"drop", ""}}));
  auto info = t->GetInfo("a");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->info.labels, (Labels{{"keep", "1"}}));
  snapshots::Info update{.name = "a", .labels = {}};
  auto u = t->UpdateInfo(update, {"labels.keep"});
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->labels.empty());
}

}  // namespace
}  // namespace berth::snapshots::storage
