#include "cri/io/log_file.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <thread>

#include "cri/io/test_util.h"

namespace berth::cri::io {
namespace {

using testing::ReadAll;
using testing::SplitLines;

TEST(LogFileTest, OpenCreatesParentsAndAppends) {
  auto tmp = fs::TempDir::Create();
  ASSERT_TRUE(tmp);
  std::string path = tmp->Path() + "/pods/ns_pod_uid/c/0.log";
  auto log = LogFile::Open(path);
  ASSERT_TRUE(log) << log.error().ToString();
  EXPECT_EQ((*log)->Path(), path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0640u, 0u);  // 0640 less the umask
  ASSERT_EQ(::stat((tmp->Path() + "/pods").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_TRUE((*log)->Write("one\n"));
  // A second open appends.
  auto again = LogFile::Open(path);
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->Write("two\n"));
  ASSERT_TRUE((*log)->Write("three\n"));
  EXPECT_EQ(ReadAll(path), "one\ntwo\nthree\n");
  (*log)->Close();
  EXPECT_TRUE((*log)->Write("x\n").error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE((*log)->Reopen().error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE(LogFile::Open("").error().Is(Errc::kInvalidArgument));
}

TEST(LogFileTest, ConcurrentWritersProduceWholeRecords) {
  auto tmp = fs::TempDir::Create();
  ASSERT_TRUE(tmp);
  auto log = LogFile::Open(tmp->Path() + "/c.log");
  ASSERT_TRUE(log);
  constexpr int kPerWriter = 2000;
  auto writer = [&](const std::string& stream) {
    for (int i = 0; i < kPerWriter; ++i) {
      // Several records per write, of varying sizes, as the copy loop writes them.
      std::string recs;
      for (int j = 0; j < 3; ++j) {
        recs += "2016-10-06T00:17:09Z " + stream + " F " + std::to_string(i) + "." +
                std::to_string(j) + " " + std::string(static_cast<size_t>(i % 300), 'z') + "\n";
      }
      EXPECT_TRUE((*log)->Write(recs));
    }
  };
  {
    std::jthread out(writer, "stdout");
    std::jthread err(writer, "stderr");
  }
  auto lines = SplitLines(ReadAll((*log)->Path()));
  ASSERT_EQ(lines.back(), "");
  lines.pop_back();
  ASSERT_EQ(lines.size(), static_cast<size_t>(2 * kPerWriter * 3));
  std::set<std::string> seen;
  for (const auto& l : lines) {
    // Each line is exactly one record as written.
    auto sp = l.find(' ', 21);
    ASSERT_NE(sp, std::string::npos) << l;
    std::string stream = l.substr(21, sp - 21);
    ASSERT_TRUE(stream == "stdout" || stream == "stderr") << l;
    auto rest = l.substr(sp + 3);
    auto dot = rest.find('.');
    int i = std::stoi(rest.substr(0, dot));
    EXPECT_EQ(l, "2016-10-06T00:17:09Z " + stream + " F " + rest.substr(0, rest.find(' ')) + " " +
                     std::string(static_cast<size_t>(i % 300), 'z'));
    EXPECT_TRUE(seen.insert(stream + rest.substr(0, rest.find(' '))).second) << l;
  }
}

TEST(LogFileTest, ReopenWhileWritingLosesNothing) {
  auto tmp = fs::TempDir::Create();
  ASSERT_TRUE(tmp);
  std::string path = tmp->Path() + "/c.log";
  std::string rotated = path + ".1";
  auto log = LogFile::Open(path);
  ASSERT_TRUE(log);
  std::atomic<int> written{0};
  std::atomic<bool> stop{false};
  std::jthread writer([&] {
    int i = 0;
    while (!stop.load()) {
      std::string rec = "2016-10-06T00:17:09Z stdout F line " + std::to_string(i) + "\n";
      EXPECT_TRUE((*log)->Write(rec));
      written.store(++i);
    }
  });
  // Let some lines land, rotate as the kubelet does (rename, then ReopenContainerLog), let
  // more land in the new file, stop.
  ASSERT_TRUE(testing::WaitFor([&] { return written.load() > 1000; }));
  ASSERT_EQ(::rename(path.c_str(), rotated.c_str()), 0);
  int before_reopen = written.load();
  ASSERT_TRUE((*log)->Reopen());
  int after_reopen = written.load();
  ASSERT_TRUE(testing::WaitFor([&] { return written.load() > after_reopen + 1000; }));
  stop.store(true);
  writer.join();
  int total = written.load();

  auto old_lines = SplitLines(ReadAll(rotated));
  auto new_lines = SplitLines(ReadAll(path));
  ASSERT_EQ(old_lines.back(), "");
  ASSERT_EQ(new_lines.back(), "");
  old_lines.pop_back();
  new_lines.pop_back();
  // Every line is in exactly one of the files, whole, in order: the old file has 0..k-1 and the
  // new one k..total-1, with k between what was written before and after Reopen().
  ASSERT_EQ(static_cast<int>(old_lines.size() + new_lines.size()), total);
  int k = static_cast<int>(old_lines.size());
  EXPECT_GE(k, before_reopen);
  EXPECT_LE(k, after_reopen + 1);
  for (int i = 0; i < total; ++i) {
    const std::string& l =
        i < k ? old_lines[static_cast<size_t>(i)] : new_lines[static_cast<size_t>(i - k)];
    ASSERT_EQ(l, "2016-10-06T00:17:09Z stdout F line " + std::to_string(i));
  }
}

TEST(LogFileTest, ReopenRecreatesAMissingFile) {
  auto tmp = fs::TempDir::Create();
  ASSERT_TRUE(tmp);
  std::string path = tmp->Path() + "/c.log";
  auto log = LogFile::Open(path);
  ASSERT_TRUE(log);
  ASSERT_TRUE((*log)->Write("a\n"));
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_TRUE((*log)->Reopen());
  ASSERT_TRUE((*log)->Write("b\n"));
  EXPECT_EQ(ReadAll(path), "b\n");
}

}  // namespace
}  // namespace berth::cri::io
