#include "cri/io/fifo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

namespace berth::cri::io {

Result<FifoSet> CreateFifoSet(const std::string& root, std::string_view id, bool with_stdin,
                              bool terminal) {
  if (id.empty() || id.find('/') != std::string_view::npos) {
    return InvalidArgument("invalid fifo id \"" + std::string(id) + "\"");
  }
  if (root.empty()) {
    return InvalidArgument("empty fifo root");
  }
  BERTH_TRY(fs::MkdirAll(root, 0700));
  std::string tmpl = root + "/XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {  // 0700
    return ErrnoError(errno, "create fifo dir in " + root);
  }
  FifoSet set;
  set.dir = tmpl;
  set.terminal = terminal;
  std::string base = set.dir + "/" + std::string(id);
  set.stdout_path = base + "-stdout";
  if (!terminal) {
    set.stderr_path = base + "-stderr";
  }
  if (with_stdin) {
    set.stdin_path = base + "-stdin";
  }
  for (const std::string* p : {&set.stdin_path, &set.stdout_path, &set.stderr_path}) {
    if (p->empty()) {
      continue;
    }
    if (::mkfifo(p->c_str(), 0700) != 0) {
      int err = errno;
      (void)fs::RemoveAll(set.dir);
      return ErrnoError(err, "mkfifo " + *p);
    }
  }
  return set;
}

Status RemoveFifoSetDir(const FifoSet& fifos) {
  if (fifos.dir.empty()) {
    return Ok();
  }
  return fs::RemoveAll(fifos.dir);
}

Status RemoveFifoPaths(const FifoSet& fifos) {
  Status first;
  std::set<std::string> dirs;
  for (const std::string* p : {&fifos.stdin_path, &fifos.stdout_path, &fifos.stderr_path}) {
    struct stat st {};
    if (p->empty() || ::lstat(p->c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) {
      continue;
    }
    if (::unlink(p->c_str()) != 0 && errno != ENOENT && first) {
      first = ErrnoError(errno, "remove fifo " + *p);
    }
    auto slash = p->find_last_of('/');
    if (slash != std::string::npos && slash > 0) {
      dirs.insert(p->substr(0, slash));
    }
  }
  for (const auto& d : dirs) {
    (void)::rmdir(d.c_str());  // only if empty, as containerd
  }
  return first;
}

Result<fs::UniqueFd> OpenFifoReadWrite(const std::string& path) {
  fs::UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoError(errno, "open fifo " + path);
  }
  struct stat st {};
  if (::fstat(fd.Get(), &st) != 0) {
    return ErrnoError(errno, "stat fifo " + path);
  }
  if (!S_ISFIFO(st.st_mode)) {
    return InvalidArgument(path + " is not a fifo");
  }
  return fd;
}

}  // namespace berth::cri::io
