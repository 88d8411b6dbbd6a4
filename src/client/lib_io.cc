// berth::cio: IO creators over client/process_io (the FIFO copies shared with the CLI).
#include <fmt/format.h>

#include "client/lib_internal.h"

namespace berth::cio {
namespace {

// FIFOs copied by threads (client::ProcessIo), or no copies at all for NullIO / log files.
class ProcessIoAdapter final : public IO {
 public:
  ProcessIoAdapter(cio::Config config, std::unique_ptr<client::ProcessIo> io)
      : config_(std::move(config)), io_(std::move(io)) {}

  const cio::Config& Config() const override { return config_; }
  void Cancel() override {
    if (io_) io_->Cancel();
  }
  void Wait() override {
    if (io_) io_->Wait();
  }
  void SetStdinCloser(std::function<void()> closer) override {
    if (io_) io_->SetStdinCloser(std::move(closer));
  }
  void Detach() override {
    if (io_) io_->Detach();
  }

 private:
  cio::Config config_;
  std::unique_ptr<client::ProcessIo> io_;
};

Creator UriCreator(std::string uri) {
  return [uri = std::move(uri)](const std::string&) -> Result<std::unique_ptr<IO>> {
    return std::unique_ptr<IO>(std::make_unique<ProcessIoAdapter>(
        cio::Config{.stdin_path = "", .stdout_path = uri, .stderr_path = uri}, nullptr));
  };
}

}  // namespace

Creator NullIO() {
  return [](const std::string&) -> Result<std::unique_ptr<IO>> {
    return std::unique_ptr<IO>(std::make_unique<ProcessIoAdapter>(cio::Config{}, nullptr));
  };
}

Creator WithStreams(int in, int out, int err, StreamOptions options) {
  return [in, out, err, options](const std::string& id) -> Result<std::unique_ptr<IO>> {
    if (id.empty()) return InvalidArgument("cio: the process id must not be empty");
    std::string dir = options.fifo_dir.empty() ? kDefaultFifoDir : options.fifo_dir;
    BERTH_ASSIGN_OR_RETURN(client::FifoSet set,
                           client::NewFifoSet(dir, id, in >= 0, options.terminal));
    if (out < 0) set.out.clear();
    if (err < 0) set.err.clear();
    cio::Config config{set.in, set.out, set.err, options.terminal};
    client::ProcessIo::Streams streams{.in = in, .out = out, .err = options.terminal ? -1 : err};
    BERTH_ASSIGN_OR_RETURN(auto io, client::ProcessIo::Start(std::move(set), streams));
    return std::unique_ptr<IO>(std::make_unique<ProcessIoAdapter>(config, std::move(io)));
  };
}

Creator Stdio(StreamOptions options) { return WithStreams(0, 1, 2, std::move(options)); }

Creator LogFile(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return [path](const std::string&) -> Result<std::unique_ptr<IO>> {
      return InvalidArgument(fmt::format("cio log file {:?}: the path must be absolute", path));
    };
  }
  return UriCreator("file://" + path);
}

Creator LogUri(const std::string& uri) {
  if (uri.find("://") == std::string::npos) {
    return [uri](const std::string&) -> Result<std::unique_ptr<IO>> {
      return InvalidArgument(fmt::format("cio log uri {:?}: expected scheme://...", uri));
    };
  }
  return UriCreator(uri);
}

Attacher AttachStdio() {
  return [](const Config& existing) -> Result<std::unique_ptr<IO>> {
    client::FifoSet set;  // no dir: attaching never removes the FIFOs
    set.in = existing.stdin_path;
    set.out = existing.stdout_path;
    set.err = existing.stderr_path;
    set.terminal = existing.terminal;
    BERTH_ASSIGN_OR_RETURN(auto io, client::ProcessIo::Start(set, {.in = 0, .out = 1, .err = 2}));
    return std::unique_ptr<IO>(std::make_unique<ProcessIoAdapter>(existing, std::move(io)));
  };
}

}  // namespace berth::cio
