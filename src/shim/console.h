#pragma once
// The runtime's console socket (runc --console-socket): a unix socket in a private temp dir on
// which the runtime sends the pty master as SCM_RIGHTS.
#include <optional>
#include <string>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::shim {

class ConsoleSocket {
 public:
  // Listens on <$XDG_RUNTIME_DIR or /tmp>/pty<random>/pty.sock.
  static Result<ConsoleSocket> Create();
  ConsoleSocket(ConsoleSocket&&) = default;
  ConsoleSocket& operator=(ConsoleSocket&&) = default;

  const std::string& Path() const { return path_; }
  // Accepts the runtime's connection and receives the master. Call after the runtime command
  // returned: the connection is then already queued. Unavailable if nothing was sent.
  Result<fs::UniqueFd> ReceiveMaster();

 private:
  ConsoleSocket(fs::TempDir dir, std::string path, fs::UniqueFd listener)
      : dir_(std::move(dir)), path_(std::move(path)), listener_(std::move(listener)) {}
  fs::TempDir dir_;
  std::string path_;
  fs::UniqueFd listener_;
};

// Receives one descriptor sent as SCM_RIGHTS on a connected unix socket.
Result<fs::UniqueFd> ReceiveFd(int sock);

}  // namespace berth::shim
