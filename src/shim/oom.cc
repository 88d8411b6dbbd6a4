#include "shim/oom.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <sstream>

#include "common/fs.h"
#include "common/log.h"

namespace berth::shim {

struct OomWatcher::Watch {
  Watch(asio::io_context& io, int fd) : desc(io, fd) {}
  asio::posix::stream_descriptor desc;  // eventfd (v1) or inotify (v2)
  fs::UniqueFd oom_control;             // v1: kept open while registered
  std::string dir;                      // memory cgroup directory
  bool unified = false;
  uint64_t last_count = 0;  // v2: oom_kill seen so far
};

namespace {

uint64_t OomKillCount(const std::string& dir) {
  auto text = fs::ReadFile(dir + "/memory.events");
  if (!text) {
    return 0;
  }
  std::istringstream in(*text);
  std::string k;
  uint64_t v = 0;
  uint64_t count = 0;
  while (in >> k >> v) {
    if (k == "oom_kill") {
      count = v;
    }
  }
  return count;
}

}  // namespace

OomWatcher::~OomWatcher() {
  for (auto& [id, w] : watches_) {
    asio::error_code ignored;
    w->desc.close(ignored);
  }
}

Status OomWatcher::Add(const std::string& id, const Cgroup& cg) {
  std::string dir = cg.unified ? cg.Dir("") : cg.Dir("memory");
  if (dir.empty()) {
    return FailedPrecondition("container " + id + " has no memory cgroup");
  }
  std::shared_ptr<Watch> w;
  if (cg.unified) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      return ErrnoError(errno, "inotify_init1");
    }
    w = std::make_shared<Watch>(io_, fd);
    if (::inotify_add_watch(fd, (dir + "/memory.events").c_str(), IN_MODIFY) < 0) {
      return ErrnoError(errno, "watch " + dir + "/memory.events");
    }
    w->last_count = OomKillCount(dir);
  } else {
    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
      return ErrnoError(errno, "eventfd");
    }
    w = std::make_shared<Watch>(io_, efd);
    w->oom_control.Reset(::open((dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC));
    if (!w->oom_control.Valid()) {
      return ErrnoError(errno, "open " + dir + "/memory.oom_control");
    }
    std::string reg = std::to_string(efd) + " " + std::to_string(w->oom_control.Get());
    fs::UniqueFd ec(::open((dir + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC));
    if (!ec.Valid() || ::write(ec.Get(), reg.data(), reg.size()) < 0) {
      return ErrnoError(errno, "register OOM event in " + dir);
    }
  }
  w->dir = dir;
  w->unified = cg.unified;
  watches_[id] = w;
  Arm(id);
  return Ok();
}

void OomWatcher::Arm(const std::string& id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;
  }
  std::weak_ptr<Watch> weak = it->second;
  it->second->desc.async_wait(asio::posix::stream_descriptor::wait_read,
                              [this, id, weak](const asio::error_code& ec) {
                                auto w = weak.lock();
                                if (ec || !w) {
                                  return;
                                }
                                char buf[4096];
                                while (::read(w->desc.native_handle(), buf, sizeof(buf)) > 0) {
                                }
                                if (::access(w->dir.c_str(), F_OK) != 0) {
                                  // The cgroup is gone (the eventfd also fires on removal): stop
                                  // watching.
                                  Remove(id);
                                  return;
                                }
                                bool oom = true;
                                if (w->unified) {
                                  uint64_t count = OomKillCount(w->dir);
                                  oom = count > w->last_count;
                                  w->last_count = count;
                                }
                                if (oom) {
                                  on_oom_(id);
                                }
                                Arm(id);
                              });
}

void OomWatcher::Remove(const std::string& id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;
  }
  asio::error_code ignored;
  it->second->desc.close(ignored);
  watches_.erase(it);
}

}  // namespace berth::shim
