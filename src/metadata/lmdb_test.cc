#include "metadata/lmdb.h"

#include <gtest/gtest.h>

#include "common/fs.h"

namespace berth::metadata {
namespace {

class LmdbTest : public testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("lmdb-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<fs::TempDir>(std::move(*dir));
    auto env = Env::Open(dir_->Path(), 1 << 24);
    ASSERT_TRUE(env) << env.error().ToString();
    env_ = std::move(*env);
  }
  std::unique_ptr<fs::TempDir> dir_;
  std::unique_ptr<Env> env_;
};

TEST(KeyTest, EncodingRoundTripsAndKeepsOrder) {
  Key a{"v1", "ns", "images", "docker.io/library/a:1"};
  EXPECT_EQ(DecodeKey(EncodeKey(a)), a);
  Key nul{"a", std::string("x\0y", 3)};
  EXPECT_EQ(DecodeKey(EncodeKey(nul)), nul);
  // Component-wise order: "a" < "a\0" < "ab"; a bucket sorts before its children's siblings.
  EXPECT_LT(EncodeKey({"a"}), EncodeKey({std::string("a\0", 2)}));
  EXPECT_LT(EncodeKey({std::string("a\0", 2)}), EncodeKey({"ab"}));
  EXPECT_LT(EncodeKey({"a", "zzz"}), EncodeKey({"ab"}));
}

TEST_F(LmdbTest, PutGetAndTrees) {
  ASSERT_TRUE(env_->Update([](Txn& txn) -> Status {
    BERTH_TRY(txn.Put({"v1", "a", "labels", "k1"}, "v1"));
    BERTH_TRY(txn.Put({"v1", "a", "labels", "k2"}, "v2"));
    BERTH_TRY(txn.Put({"v1", "ab"}, ""));
    BERTH_TRY(txn.Put({"v1", "b", "images", "x"}, "1"));
    return Ok();
  }));
  ASSERT_TRUE(env_->View([](const Txn& txn) -> Status {
    EXPECT_EQ(txn.Children({"v1"}), (std::vector<std::string>{"a", "ab", "b"}));
    auto m = txn.ReadMap({"v1", "a", "labels"});
    EXPECT_TRUE(m);
    EXPECT_EQ(m->size(), 2u);
    EXPECT_EQ(m->at("k2"), "v2");
    EXPECT_TRUE(*txn.Exists({"v1", "b"}));
    EXPECT_FALSE(*txn.Exists({"v1", "c"}));
    EXPECT_FALSE(txn.Get({"v1", "a", "labels", "k3"})->has_value());
    return Ok();
  }));
  ASSERT_TRUE(env_->Update([](Txn& txn) { return txn.DeleteTree({"v1", "a"}); }));
  ASSERT_TRUE(env_->View([](const Txn& txn) -> Status {
    EXPECT_EQ(txn.Children({"v1"}), (std::vector<std::string>{"ab", "b"}));
    return Ok();
  }));
}

TEST_F(LmdbTest, FailedUpdateLeavesOldState) {
  ASSERT_TRUE(env_->Update([](Txn& txn) { return txn.Put({"k"}, "old"); }));
  auto s = env_->Update([](Txn& txn) -> Status {
    BERTH_TRY(txn.Put({"k"}, "new"));
    return Unknown("boom");
  });
  EXPECT_FALSE(s);
  ASSERT_TRUE(env_->View([](const Txn& txn) -> Status {
    EXPECT_EQ(**txn.Get({"k"}), "old");
    return Ok();
  }));
}

TEST_F(LmdbTest, ReopenKeepsData) {
  ASSERT_TRUE(env_->Update([](Txn& txn) { return txn.Put({"persist"}, "yes"); }));
  env_.reset();
  auto env = Env::Open(dir_->Path(), 1 << 24);
  ASSERT_TRUE(env);
  ASSERT_TRUE((*env)->View([](const Txn& txn) -> Status {
    EXPECT_EQ(**txn.Get({"persist"}), "yes");
    return Ok();
  }));
}

}  // namespace
}  // namespace berth::metadata
