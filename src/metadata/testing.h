#pragma once
// Test fixture: a metadata Db over a real LocalStore in a temp dir.
#include <gtest/gtest.h>

#include <memory>

#include "common/fs.h"
#include "content/local/store.h"
#include "metadata/content_store.h"
#include "metadata/db.h"

namespace berth::metadata {

class MetadataFixture : public testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("metadata-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<fs::TempDir>(std::move(*dir));
    Reopen();
  }
  void Reopen() {
    cs_.reset();
    db_.reset();
    local_.reset();
    auto local = content::LocalStore::Open(dir_->Path() + "/content");
    ASSERT_TRUE(local) << local.error().ToString();
    local_ = std::move(*local);
    auto db = Db::Open(dir_->Path() + "/meta", local_.get());
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    cs_ = std::make_unique<ContentStore>(*db_);
  }
  // Writes `data` into namespace ns through the namespaced store; returns its digest.
  Digest Put(const std::string& ns, const std::string& data, const Labels& labels = {},
             const std::string& lease = "") {
    Context ctx{.ns = ns, .lease = lease};
    Digest d = Digest::FromBytes(data);
    auto w = cs_->Writer(ctx, {.ref = "ref-" + d.String(), .desc = {.digest = d}});
    if (!w && w.error().Is(Errc::kAlreadyExists)) return d;
    EXPECT_TRUE(w) << w.error().ToString();
    if (!w) return d;
    auto st = (*w)->Status();
    if (st && st->offset == 0) {  // a shared writer (blob in another namespace) has it all
      EXPECT_TRUE((*w)->Write(data));
    }
    auto s = (*w)->Commit(static_cast<int64_t>(data.size()), d, labels);
    EXPECT_TRUE(s) << s.error().ToString();
    return d;
  }
  bool OnDisk(const Digest& d) const {
    return ::access((dir_->Path() + "/content/blobs/sha256/" + std::string(d.Encoded())).c_str(),
                    F_OK) == 0;
  }

  std::unique_ptr<fs::TempDir> dir_;
  std::unique_ptr<content::LocalStore> local_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<ContentStore> cs_;
};

}  // namespace berth::metadata
