#pragma once
// A connection to one live shim: its bundle, how to invoke its binary, the ttrpc client speaking
// containerd.task.v2.Task, and the copy of its log FIFO to the daemon's stderr.
//
// The shim protocol's own messages (containerd::task::v2, runtime/v2/task/shim.proto) are the
// contract here: callers build requests and read responses; every call carries the namespace in
// ttrpc metadata (containerd-namespace-ttrpc). Calls block unless *Async; never block on the io
// thread.
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "runtime/binary.h"
#include "runtime/bundle.h"
#include "runtime/task.h"
#include "ttrpc/ttrpc.h"

namespace berth::runtime {

inline constexpr std::string_view kTaskService = "containerd.task.v2.Task";

// Copies the bundle's `log` FIFO to stderr on the io thread. The FIFO is opened O_RDWR so it
// never reports EOF while we hold it (the shim may reopen it).
class LogCopier : public std::enable_shared_from_this<LogCopier> {
 public:
  // Creates the FIFO if needed, opens it and starts copying.
  static Result<std::shared_ptr<LogCopier>> Open(asio::io_context& io, const std::string& path);
  // Stops copying and closes the FIFO (from any thread).
  void Close();

  explicit LogCopier(asio::io_context& io) : io_(io), stream_(io) {}

 private:
  void ReadMore();
  void Copy(size_t n);  // buf_[0, n) to stderr

  asio::io_context& io_;
  asio::posix::stream_descriptor stream_;
  char buf_[4096];
};

// A connection to one shim serving one task (a grouped shim serving several containers of a
// pod gets one connection per task). Implements the typed Task interface over the shim v2 API;
// TaskManager uses the raw calls for the lifecycle steps (Create, Connect, Delete, Shutdown).
class Shim final : public Task {
 public:
  Shim(Bundle bundle, ShimCommand command, std::shared_ptr<ttrpc::Client> client,
       std::shared_ptr<LogCopier> log)
      : bundle_(std::move(bundle)),
        command_(std::move(command)),
        client_(std::move(client)),
        log_(std::move(log)) {}
  ~Shim();
  Shim(const Shim&) = delete;
  Shim& operator=(const Shim&) = delete;

  const std::string& Id() const override { return bundle_.Id(); }
  const std::string& Namespace() const override { return bundle_.Namespace(); }
  uint32_t Pid() const override { return pid_.load(); }
  void SetPid(uint32_t pid) { pid_.store(pid); }
  const Bundle& GetBundle() const { return bundle_; }
  const ShimCommand& Command() const { return command_; }

  // containerd.task.v2.Task/<method>. The default timeout bounds how long a hung shim can hold
  // a daemon thread (containerd has none: its calls end with the client's context, which a
  // blocking call here cannot see); Wait, which may take forever, goes through CallAsync.
  static constexpr std::chrono::milliseconds kDefaultTimeout = std::chrono::minutes(2);
  template <class Resp, class Req>
  Result<Resp> Call(std::string_view method, const Req& req,
                    std::chrono::milliseconds timeout = kDefaultTimeout) {
    return client_->Call<Resp>(kTaskService, method, req, Meta(), timeout);
  }
  // As Call, answered on the io thread; no timeout (Wait).
  template <class Resp, class Req>
  void CallAsync(std::string_view method, const Req& req, std::function<void(Result<Resp>)> done) {
    client_->CallAsync(kTaskService, method, req.SerializeAsString(), Meta(),
                       std::chrono::milliseconds(0),
                       [done = std::move(done), m = std::string(method)](Result<std::string> r) {
                         if (!r) {
                           done(std::move(r).error());
                           return;
                         }
                         Resp resp;
                         if (!resp.ParseFromString(*r)) {
                           done(Unknown("ttrpc: unmarshal response of " + m));
                           return;
                         }
                         done(std::move(resp));
                       });
  }

  // Marks the shim as being removed by us: its connection loss is then expected and does not
  // trigger dead-shim cleanup. Returns false if it was already marked.
  bool MarkRemoving() { return !removing_.exchange(true); }
  bool Removing() const { return removing_.load(); }

  // Closes the connection (no on-close hook) and stops the log copy. Idempotent.
  void Close();
  bool Closed() const override { return client_->Closed(); }

  // ---- Task
  Result<uint32_t> Start(const std::string& exec_id) override;
  Status Kill(const std::string& exec_id, uint32_t signal, bool all) override;
  void Wait(const std::string& exec_id, std::function<void(Result<ExitStatus>)> done) override;
  Result<ProcessState> State(const std::string& exec_id,
                             std::chrono::milliseconds timeout) override;
  Status Exec(const std::string& exec_id, const ExecOpts& opts) override;
  Result<Exit> DeleteProcess(const std::string& exec_id) override;
  Status ResizePty(const std::string& exec_id, uint32_t width, uint32_t height) override;
  Status CloseStdin(const std::string& exec_id) override;
  Status Pause() override;
  Status Resume() override;
  Result<std::vector<ProcessInfo>> Pids() override;
  Status Update(const std::optional<google::protobuf::Any>& resources,
                const std::map<std::string, std::string>& annotations) override;
  Result<google::protobuf::Any> Stats() override;
  Status Checkpoint(const std::string& path,
                    const std::optional<google::protobuf::Any>& options) override;

 private:
  ttrpc::Metadata Meta() const;

  Bundle bundle_;
  ShimCommand command_;
  std::shared_ptr<ttrpc::Client> client_;
  std::shared_ptr<LogCopier> log_;
  std::atomic<uint32_t> pid_{0};
  std::atomic<bool> removing_{false};
  std::atomic<bool> closed_{false};
};

}  // namespace berth::runtime
