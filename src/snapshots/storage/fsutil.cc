#include "snapshots/storage/fsutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/fs.h"

namespace berth::snapshots::storage {

Result<std::string> PrepareRoot(const std::string& root) {
  BERTH_TRY(fs::MkdirAll(root, 0700));
  char* resolved = ::realpath(root.c_str(), nullptr);
  if (resolved == nullptr) return ErrnoError(errno, "resolve " + root);
  std::string out(resolved);
  ::free(resolved);  // NOLINT: realpath's allocation
  return out;
}

Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return ErrnoError(errno, "create temp dir in " + parent);
  return std::string(buf.data());
}

Result<bool> SupportsDType(const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(auto probe, MakeTempDir(dir, "d_type-check-"));
  std::string file = probe + "/f";
  bool supported = false;
  Status status = Ok();
  if (fs::UniqueFd fd(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); !fd.Valid()) {
    status = ErrnoError(errno, "create " + file);
  } else if (DIR* d = ::opendir(probe.c_str()); d == nullptr) {
    status = ErrnoError(errno, "opendir " + probe);
  } else {
    while (struct dirent* de = ::readdir(d)) {
      if (std::strcmp(de->d_name, "f") == 0) supported = de->d_type != DT_UNKNOWN;
    }
    ::closedir(d);
  }
  (void)fs::RemoveAll(probe);
  BERTH_TRY(status);
  return supported;
}

}  // namespace berth::snapshots::storage
