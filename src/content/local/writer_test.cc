// LocalStore ingests: write, commit, resume, locking, abort, truncate, crashes.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <latch>
#include <thread>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "content/local/store.h"
#include "content/local/store_test_util.h"

namespace berth::content::test {
namespace {

TEST_F(LocalStoreTest, WriteCommitReadBack) {
  std::string data = MakeContent(100'000, 1);
  Digest d = Digest::FromBytes(data);
  auto w = OpenWriter("layer-1", static_cast<int64_t>(data.size()), d);
  ASSERT_TRUE(w);
  for (size_t off = 0; off < data.size(); off += 4096) {
    ASSERT_TRUE(w->Write(std::string_view(data).substr(off, 4096)));
  }
  EXPECT_EQ(w->Digest(), d);
  auto status = w->Status();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->offset, static_cast<int64_t>(data.size()));
  EXPECT_EQ(status->total, static_cast<int64_t>(data.size()));
  EXPECT_EQ(status->expected, d);

  Timestamp before = Now();
  ASSERT_TRUE(w->Commit(static_cast<int64_t>(data.size()), d, {{"k", "v"}}));
  Timestamp after = Now();

  auto info = store_->Info(ctx_, d);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->digest, d);
  EXPECT_EQ(info->size, static_cast<int64_t>(data.size()));
  EXPECT_GE(info->created_at, before);
  EXPECT_LE(info->created_at, after);
  EXPECT_TRUE(info->labels.empty()) << "the local store keeps no labels";
  EXPECT_EQ(ReadBlob(d), data);

  // Committed: the writer is closed, the ingest is gone, the ref is free again.
  auto write_after = w->Write("x");
  ASSERT_FALSE(write_after);
  EXPECT_TRUE(write_after.error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE(w->Close());
  EXPECT_FALSE(Exists(IngestPath("layer-1")));
  auto gone = store_->Status(ctx_, "layer-1");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().Is(Errc::kNotFound));
  EXPECT_TRUE(OpenWriter("layer-1"));
}

// Path traversal through an ingest ref (a class of containerd advisories): a ref is only ever a
// name, hashed into the ingest directory's name; the text itself is kept in that directory's
// `ref` file. Nothing appears outside the store, whatever the ref says.
TEST_F(LocalStoreTest, HostileRefsStayInsideTheIngestDirectory) {
  const std::vector<std::string> refs = {
      "../../../../../tmp/escape", "/etc/passwd-x",       "a/../../b", "..",
      std::string("nul\0byte", 8), std::string(5000, 'r')};
  for (const auto& ref : refs) {
    auto w = OpenWriter(ref);
    ASSERT_NE(w, nullptr) << ref;
    ASSERT_TRUE(w->Write("data of " + ref));
    auto st = w->Status();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->ref, ref);
    EXPECT_TRUE(std::filesystem::exists(IngestPath(ref) + "/data")) << ref;
    ASSERT_TRUE(w->Close());
  }
  // The temp dir holds the store and nothing else; the store its own three entries.
  std::vector<std::string> top;
  for (const auto& e : std::filesystem::directory_iterator(tmp_->Path())) {
    top.push_back(e.path().filename());
  }
  EXPECT_EQ(top, std::vector<std::string>{"io.containerd.content.v1.content"});
  size_t ingests = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(root_ + "/ingest")) {
    ++ingests;
  }
  EXPECT_EQ(ingests, refs.size());
  EXPECT_FALSE(std::filesystem::exists("/tmp/escape"));
  EXPECT_FALSE(std::filesystem::exists("/etc/passwd-x"));
}

TEST_F(LocalStoreTest, EmptyBlobCommits) {
  auto w = OpenWriter("empty");
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Commit(0, Digest::FromBytes(""), {}));
  EXPECT_EQ(ReadBlob(Digest::FromBytes("")), "");
}

TEST_F(LocalStoreTest, CommitSizeMismatchKeepsIngest) {
  auto w = OpenWriter("ref");
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Write("hello"));
  auto st = w->Commit(6, {}, {});
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kFailedPrecondition)) << st.error().ToString();
  EXPECT_EQ(st.error().What(), "unexpected commit size 5, expected 6");
  EXPECT_TRUE(ListNames(store_->Root() + "/blobs/sha256").empty());

  // The writer is closed and unlocked; the ingest stays and resumes where it was.
  EXPECT_FALSE(w->Write("x"));
  auto w2 = OpenWriter("ref");
  ASSERT_TRUE(w2);
  EXPECT_EQ(w2->Status()->offset, 5);
  EXPECT_EQ(w2->Digest(), Digest::FromBytes("hello"));
  EXPECT_TRUE(w2->Commit(5, Digest::FromBytes("hello"), {}));
}

TEST_F(LocalStoreTest, CommitDigestMismatch) {
  auto w = OpenWriter("ref");
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Write("hello"));
  Digest wrong = Digest::FromBytes("world");
  auto st = w->Commit(5, wrong, {});
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kFailedPrecondition));
  EXPECT_EQ(st.error().What(), "unexpected commit digest " + Digest::FromBytes("hello").String() +
                                   ", expected " + wrong.String());
  EXPECT_FALSE(store_->Info(ctx_, wrong));
  EXPECT_FALSE(store_->Info(ctx_, Digest::FromBytes("hello")));
  EXPECT_TRUE(ListNames(store_->Root() + "/blobs/sha256").empty());
  EXPECT_TRUE(Exists(IngestPath("ref") + "/data"));
}

TEST_F(LocalStoreTest, CommitOfStoredContentIsAlreadyExists) {
  std::string data = "same bytes";
  Digest d = Commit("first", data);
  for (const Digest& expected : {d, Digest{}}) {
    auto w = OpenWriter("second");
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write(data));
    auto st = w->Commit(static_cast<int64_t>(data.size()), expected, {});
    ASSERT_FALSE(st);
    EXPECT_TRUE(st.error().Is(Errc::kAlreadyExists)) << st.error().ToString();
    EXPECT_FALSE(Exists(IngestPath("second"))) << "AlreadyExists removes the ingest";
  }
  EXPECT_EQ(ReadBlob(d), data);
}

TEST_F(LocalStoreTest, WriterForStoredDigestIsAlreadyExists) {
  Digest d = Commit("a", "content");
  auto w = store_->Writer(ctx_, {.ref = "b", .desc = {.digest = d}});
  ASSERT_FALSE(w);
  EXPECT_TRUE(w.error().Is(Errc::kAlreadyExists)) << w.error().ToString();
  EXPECT_FALSE(Exists(IngestPath("b")));
  EXPECT_TRUE(OpenWriter("b")) << "the lock was released";
}

TEST_F(LocalStoreTest, ResumeAfterClose) {
  std::string data = MakeContent(300'000, 2);
  Digest d = Digest::FromBytes(data);
  const auto total = static_cast<int64_t>(data.size());
  Timestamp started;
  {
    auto w = OpenWriter("resume", total, d);
    ASSERT_TRUE(w);
    started = w->Status()->started_at;
    ASSERT_TRUE(w->Write(std::string_view(data).substr(0, 123'457)));
    ASSERT_TRUE(w->Close());
    EXPECT_TRUE(w->Close()) << "Close twice is fine";
  }
  auto st = store_->Status(ctx_, "resume");
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->offset, 123'457);
  EXPECT_EQ(st->total, total);

  auto w = OpenWriter("resume", total, d);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Status()->offset, 123'457);
  EXPECT_EQ(w->Status()->started_at, started);
  EXPECT_EQ(w->Digest(), Digest::FromBytes(std::string_view(data).substr(0, 123'457)));
  ASSERT_TRUE(w->Write(std::string_view(data).substr(123'457)));
  EXPECT_EQ(w->Digest(), d);
  ASSERT_TRUE(w->Commit(total, d, {}));
  EXPECT_EQ(ReadBlob(d), data);
}

TEST_F(LocalStoreTest, ResumeAfterCrash) {
  std::string data = MakeContent(50'000, 3);
  Digest d = Digest::FromBytes(data);
  {
    auto w = OpenWriter("crash", static_cast<int64_t>(data.size()), d);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write(std::string_view(data).substr(0, 20'000)));
    // Destroyed without Close: no fsync, no updatedat, as if the process died.
  }
  Reopen();  // a fresh store on the same root, as after a restart
  auto w = OpenWriter("crash", static_cast<int64_t>(data.size()), d);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Status()->offset, 20'000);
  EXPECT_EQ(w->Digest(), Digest::FromBytes(std::string_view(data).substr(0, 20'000)));
  ASSERT_TRUE(w->Write(std::string_view(data).substr(20'000)));
  ASSERT_TRUE(w->Commit(static_cast<int64_t>(data.size()), d, {}));
  EXPECT_EQ(ReadBlob(d), data);
}

TEST_F(LocalStoreTest, ResumeWithDifferentTotalResets) {
  {
    auto w = OpenWriter("t", 100);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("partial"));
    ASSERT_TRUE(w->Close());
  }
  auto w = OpenWriter("t", 200);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Status()->offset, 0);
  EXPECT_EQ(w->Status()->total, 200);
  EXPECT_EQ(w->Digest(), Digest::FromBytes(""));
  EXPECT_EQ(*fs::ReadFile(IngestPath("t") + "/total"), "200");
  struct stat st {};
  ASSERT_EQ(::stat((IngestPath("t") + "/data").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0) << "reset leaves no stale data behind";
}

TEST_F(LocalStoreTest, ResumeKeepsStoredTotalOrRecordsNewOne) {
  {
    auto w = OpenWriter("known", 10);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("abc"));
    ASSERT_TRUE(w->Close());
    auto u = OpenWriter("unknown");
    ASSERT_TRUE(u);
    ASSERT_TRUE(u->Write("abc"));
    ASSERT_TRUE(u->Close());
  }
  auto w = OpenWriter("known");  // total not given: the stored one stands
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Status()->offset, 3);
  EXPECT_EQ(w->Status()->total, 10);
  auto u = OpenWriter("unknown", 42);  // stored total unknown: the given one is recorded
  ASSERT_TRUE(u);
  EXPECT_EQ(u->Status()->offset, 3);
  EXPECT_EQ(u->Status()->total, 42);
  EXPECT_EQ(*fs::ReadFile(IngestPath("unknown") + "/total"), "42");
}

TEST_F(LocalStoreTest, ResumeWithForeignRefFileResets) {
  {
    auto w = OpenWriter("mine");
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("data"));
    ASSERT_TRUE(w->Close());
  }
  ASSERT_TRUE(fs::WriteFileAtomic(IngestPath("mine") + "/ref", "someone-else"));
  auto w = OpenWriter("mine");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->Status()->offset, 0);
  EXPECT_EQ(*fs::ReadFile(IngestPath("mine") + "/ref"), "mine");
}

TEST_F(LocalStoreTest, SecondWriterOnSameRefIsUnavailable) {
  auto w1 = OpenWriter("busy");
  ASSERT_TRUE(w1);
  auto w2 = store_->Writer(ctx_, {.ref = "busy"});
  ASSERT_FALSE(w2);
  EXPECT_TRUE(w2.error().Is(Errc::kUnavailable)) << w2.error().ToString();
  EXPECT_NE(w2.error().What().find("ref busy locked for"), std::string::npos) << w2.error().What();

  // Also from another thread, and from a second store object on the same root.
  std::thread([&] {
    auto w = store_->Writer(ctx_, {.ref = "busy"});
    EXPECT_TRUE(!w && w.error().Is(Errc::kUnavailable));
  }).join();
  auto other = LocalStore::Open(root_);
  ASSERT_TRUE(other);
  auto w3 = (*other)->Writer(ctx_, {.ref = "busy"});
  EXPECT_TRUE(!w3 && w3.error().Is(Errc::kUnavailable));
  EXPECT_TRUE(Exists(IngestPath("busy") + "/data")) << "opening a store spares held ingests";

  ASSERT_TRUE(w1->Close());
  EXPECT_TRUE(OpenWriter("busy"));
}

TEST_F(LocalStoreTest, SameRefRaceHasOneWinner) {
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::latch tried(kThreads);
  std::atomic<int> winners{0};
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto w = store_->Writer(ctx_, {.ref = "contended"});
      if (w) {
        ++winners;
      } else if (w.error().Is(Errc::kUnavailable)) {
        ++unavailable;
      }
      tried.arrive_and_wait();  // keep the winner's lock until everyone has tried
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(unavailable.load(), kThreads - 1);
}

TEST_F(LocalStoreTest, ParallelWritersOnDifferentRefs) {
  constexpr int kThreads = 8;
  std::vector<std::string> blobs;
  blobs.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    blobs.push_back(MakeContent(200'000 + static_cast<size_t>(i) * 1000, 100 + i));
  }
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const std::string& data = blobs[static_cast<size_t>(i)];
      auto w = store_->Writer(ctx_, {.ref = "layer-" + std::to_string(i)});
      if (!w) return;
      for (size_t off = 0; off < data.size(); off += 8192) {
        if (!(*w)->Write(std::string_view(data).substr(off, 8192))) return;
      }
      if ((*w)->Commit(static_cast<int64_t>(data.size()), Digest::FromBytes(data), {})) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  for (const auto& data : blobs) {
    EXPECT_EQ(ReadBlob(Digest::FromBytes(data)), data);
  }
  EXPECT_EQ(WalkAll().size(), static_cast<size_t>(kThreads));
  EXPECT_TRUE(ListNames(store_->Root() + "/ingest").empty());
}

TEST_F(LocalStoreTest, ConcurrentCommitsOfOneDigestStoreItOnce) {
  constexpr int kThreads = 6;
  std::string data = MakeContent(100'000, 11);
  Digest d = Digest::FromBytes(data);
  std::vector<std::unique_ptr<Writer>> writers;
  writers.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    writers.push_back(OpenWriter("dup-" + std::to_string(i)));
    ASSERT_TRUE(writers.back());
    ASSERT_TRUE(writers.back()->Write(data));
  }
  std::latch start(kThreads);
  std::atomic<int> committed{0};
  std::atomic<int> exists{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto st = writers[static_cast<size_t>(i)]->Commit(0, d, {});
      if (st) {
        ++committed;
      } else if (st.error().Is(Errc::kAlreadyExists)) {
        ++exists;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committed.load(), 1);
  EXPECT_EQ(exists.load(), kThreads - 1);
  EXPECT_EQ(ReadBlob(d), data);
  EXPECT_TRUE(ListNames(store_->Root() + "/ingest").empty());
}

TEST_F(LocalStoreTest, Abort) {
  {
    auto w = OpenWriter("doomed");
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write("bytes"));
    ASSERT_TRUE(w->Close());
  }
  ASSERT_TRUE(store_->Abort(ctx_, "doomed"));
  EXPECT_FALSE(Exists(IngestPath("doomed")));
  auto st = store_->Status(ctx_, "doomed");
  EXPECT_TRUE(!st && st.error().Is(Errc::kNotFound));
  auto again = store_->Abort(ctx_, "doomed");
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().Is(Errc::kNotFound));
  auto empty = store_->Abort(ctx_, "");
  EXPECT_TRUE(!empty && empty.error().Is(Errc::kInvalidArgument));
}

TEST_F(LocalStoreTest, AbortOfHeldIngestFailsItsCommit) {
  auto w = OpenWriter("held");
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Write("bytes"));
  ASSERT_TRUE(store_->Abort(ctx_, "held"));  // as containerd: no refusal while locked
  auto st = w->Commit(5, {}, {});
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kNotFound)) << st.error().ToString();
  EXPECT_FALSE(store_->Info(ctx_, Digest::FromBytes("bytes")));
  EXPECT_TRUE(ListNames(store_->Root() + "/blobs/sha256").empty());
}

TEST_F(LocalStoreTest, TruncateRestarts) {
  auto w = OpenWriter("trunc");
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Write("garbage garbage garbage"));
  auto bad = w->Truncate(3);
  EXPECT_TRUE(!bad && bad.error().Is(Errc::kNotImplemented));
  auto neg = w->Truncate(-1);
  EXPECT_TRUE(!neg && neg.error().Is(Errc::kInvalidArgument));
  ASSERT_TRUE(w->Truncate(0));
  EXPECT_EQ(w->Status()->offset, 0);
  EXPECT_EQ(w->Digest(), Digest::FromBytes(""));
  ASSERT_TRUE(w->Write("good"));
  ASSERT_TRUE(w->Commit(4, Digest::FromBytes("good"), {}));
  EXPECT_EQ(ReadBlob(Digest::FromBytes("good")), "good");
}

TEST_F(LocalStoreTest, CrashBeforeCommitNeverShowsPartialBlob) {
  std::string data = MakeContent(64'000, 9);
  Digest d = Digest::FromBytes(data);
  {
    auto w = OpenWriter("partial", static_cast<int64_t>(data.size()), d);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->Write(std::string_view(data).substr(0, 30'000)));
  }  // "crash": no Close, no Commit
  for (int pass = 0; pass < 2; ++pass) {
    auto info = store_->Info(ctx_, d);
    EXPECT_TRUE(!info && info.error().Is(Errc::kNotFound));
    EXPECT_FALSE(store_->ReaderAt(ctx_, {.digest = d}));
    EXPECT_TRUE(WalkAll().empty());
    EXPECT_TRUE(ListNames(store_->Root() + "/blobs/sha256").empty());
    auto list = store_->ListStatuses(ctx_, {});
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].offset, 30'000);
    Reopen();
  }
  // A commit of the partial data with the full expectations fails and shows nothing either.
  auto w = OpenWriter("partial", static_cast<int64_t>(data.size()), d);
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->Commit(static_cast<int64_t>(data.size()), d, {}));
  EXPECT_TRUE(ListNames(store_->Root() + "/blobs/sha256").empty());
}

}  // namespace
}  // namespace berth::content::test
