#include "diff/test_util.h"

#include <dirent.h>

#include <algorithm>

#include <fmt/format.h>

#include "common/digest.h"

namespace berth::diff::test {
namespace {

void Walk(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  ASSERT_TRUE(d) << dir;
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d.get())) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : fmt::format("{}/{}", rel, n);
    std::string p = fmt::format("{}/{}", root, r);
    struct stat st = Lstat(p);
    std::string extra;
    if (S_ISREG(st.st_mode)) {
      extra = Digest::FromBytes(ReadAll(p)).String().substr(7, 12);
    } else if (S_ISLNK(st.st_mode)) {
      extra = "-> " + Readlink(p);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      extra = fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
    }
    std::string cap = XattrOf(p, "security.capability");
    out.push_back(fmt::format("{} {:o} {}:{} size={} mtime={} {} cap={}", r, st.st_mode, st.st_uid,
                              st.st_gid, S_ISDIR(st.st_mode) ? 0 : st.st_size, st.st_mtim.tv_sec,
                              extra, cap == "<none>" ? "" : "set"));
    if (S_ISDIR(st.st_mode)) Walk(root, r, out);
  }
}

}  // namespace

std::vector<std::string> Describe(const std::string& root) {
  std::vector<std::string> out;
  Walk(root, "", out);
  return out;
}

}  // namespace berth::diff::test
