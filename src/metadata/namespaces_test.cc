#include "metadata/namespaces.h"

#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::metadata {
namespace {

class NamespacesTest : public testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("ns-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<fs::TempDir>(std::move(*dir));
    auto db = Db::Open(dir_->Path() + "/meta");
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<NamespaceStore>(*db_);
  }
  std::unique_ptr<fs::TempDir> dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<NamespaceStore> store_;
};

TEST_F(NamespacesTest, CreateListLabels) {
  ASSERT_TRUE(store_->Create("ns1", {{"a", "b"}}));
  ASSERT_TRUE(store_->Create("ns2", {}));
  EXPECT_EQ(*store_->List(), (std::vector<std::string>{"ns1", "ns2"}));
  EXPECT_EQ(*store_->GetLabels("ns1"), (Labels{{"a", "b"}}));
  ASSERT_TRUE(store_->SetLabel("ns1", "a", "c"));
  ASSERT_TRUE(store_->SetLabel("ns1", "x.y/z", "1"));
  EXPECT_EQ(*store_->GetLabels("ns1"), (Labels{{"a", "c"}, {"x.y/z", "1"}}));
  ASSERT_TRUE(store_->SetLabel("ns1", "a", ""));
  EXPECT_EQ(*store_->GetLabels("ns1"), (Labels{{"x.y/z", "1"}}));
  ASSERT_TRUE(store_->SetLabels("ns1", {{"only", "this"}}));
  EXPECT_EQ(*store_->GetLabels("ns1"), (Labels{{"only", "this"}}));
}

TEST_F(NamespacesTest, DuplicateIsAlreadyExists) {
  ASSERT_TRUE(store_->Create("ns1", {}));
  auto s = store_->Create("ns1", {});
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kAlreadyExists));
  EXPECT_EQ(s.error().ToString(), "namespace \"ns1\": already exists");
}

TEST_F(NamespacesTest, InvalidNameIsInvalidArgument) {
  auto s = store_->Create("bad name", {});
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(s.error().ToString().find("must match"), std::string::npos);
}

TEST_F(NamespacesTest, LabelSizeLimit) {
  auto s = store_->Create("ns1", {{"k", std::string(5000, 'v')}});
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kInvalidArgument));
}

TEST_F(NamespacesTest, UnknownHasNoLabels) {
  auto labels = store_->GetLabels("nobody");
  ASSERT_TRUE(labels);
  EXPECT_TRUE(labels->empty());
}

TEST_F(NamespacesTest, DeleteMissingIsNotFound) {
  auto s = store_->Delete("nobody");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kNotFound));
}

TEST_F(NamespacesTest, DeleteNonEmptyIsFailedPrecondition) {
  ASSERT_TRUE(store_->Create("ns1", {}));
  ASSERT_TRUE(db_->Update([](Txn& txn) -> Status {
    BERTH_TRY(txn.Put(NsKey("ns1", {kBucketImages, "img", "target", "digest"}), "sha256:x"));
    BERTH_TRY(txn.Put(NsKey("ns1", {kBucketSnapshots, "overlayfs", "k", "name"}), "x"));
    return txn.Put(NsKey("ns1", {kBucketLeases, "l1", "createdat"}), "x");
  }));
  auto s = store_->Delete("ns1");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kFailedPrecondition));
  EXPECT_EQ(s.error().ToString(),
            "namespace \"ns1\" must be empty, but it still has images, snapshots on \"overlayfs\" "
            "snapshotter: failed precondition");
  ASSERT_TRUE(db_->Update([](Txn& txn) -> Status {
    BERTH_TRY(txn.DeleteTree(NsKey("ns1", {kBucketImages})));
    return txn.DeleteTree(NsKey("ns1", {kBucketSnapshots}));
  }));
  EXPECT_TRUE(store_->Delete("ns1")) << "leases do not count";
  EXPECT_TRUE(store_->List()->empty());
}

TEST_F(NamespacesTest, PersistsAcrossReopen) {
  ASSERT_TRUE(store_->Create("keep", {{"a", "b"}}));
  store_.reset();
  db_.reset();
  auto db = Db::Open(dir_->Path() + "/meta");
  ASSERT_TRUE(db);
  NamespaceStore store(**db);
  EXPECT_EQ(*store.GetLabels("keep"), (Labels{{"a", "b"}}));
}

}  // namespace
}  // namespace berth::metadata
