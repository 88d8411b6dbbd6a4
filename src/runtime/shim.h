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

class Shim {
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

  const std::string& Id() const { return bundle_.Id(); }
  const std::string& Namespace() const { return bundle_.Namespace(); }
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
  bool Closed() const { return client_->Closed(); }

 private:
  ttrpc::Metadata Meta() const;

  Bundle bundle_;
  ShimCommand command_;
  std::shared_ptr<ttrpc::Client> client_;
  std::shared_ptr<LogCopier> log_;
  std::atomic<bool> removing_{false};
  std::atomic<bool> closed_{false};
};

}  // namespace berth::runtime
