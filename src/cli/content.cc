// `berth content`: ctr's content commands over the Content service.
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/format.h"
#include "cli/table.h"
#include "cli/tabwriter.h"
#include "common/log.h"

namespace berth::cli {
namespace {

namespace api = containerd::services::content::v1;

Result<std::unique_ptr<api::Content::Stub>> Stub(App& app) {
  BERTH_ASSIGN_OR_RETURN(auto channel, app.Channel());
  return api::Content::NewStub(channel);
}

std::chrono::nanoseconds Since(const google::protobuf::Timestamp& ts) {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return now - std::chrono::seconds(ts.seconds()) - std::chrono::nanoseconds(ts.nanos());
}

std::map<std::string, std::string> SortedLabels(
    const google::protobuf::Map<std::string, std::string>& labels) {
  return {labels.begin(), labels.end()};
}

// strerror as Go's syscall.Errno prints it ("illegal seek", not "Illegal seek").
std::string GoErrno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

// Reads up to buf.size() bytes from stdin, stopping early only at end of input (io.ReadAtLeast).
Result<size_t> ReadFull(std::string& buf) {
  size_t n = 0;
  while (n < buf.size()) {
    ssize_t r = ::read(STDIN_FILENO, buf.data() + n, buf.size() - n);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      return Unknown(fmt::format("read /dev/stdin: {}", GoErrno(errno)));
    }
    n += static_cast<size_t>(r);
  }
  return n;
}

// One Write stream, driven as the Go client's remoteWriter does: every request gets one reply.
class RemoteWriter {
 public:
  RemoteWriter(
      std::unique_ptr<grpc::ClientContext> ctx,
      std::unique_ptr<grpc::ClientReaderWriter<api::WriteContentRequest, api::WriteContentResponse>>
          stream)
      : ctx_(std::move(ctx)), stream_(std::move(stream)) {}
  ~RemoteWriter() { Close(); }

  Result<api::WriteContentResponse> Send(const api::WriteContentRequest& req) {
    api::WriteContentResponse resp;
    if (!stream_->Write(req) || !stream_->Read(&resp)) return FinishError();
    return resp;
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    stream_->WritesDone();
    api::WriteContentResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    (void)stream_->Finish();
  }

 private:
  Error FinishError() {
    closed_ = true;
    grpc::Status st = stream_->Finish();
    if (st.ok()) return Unknown("EOF");
    return FromGrpc(st);
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<api::WriteContentRequest, api::WriteContentResponse>>
      stream_;
  bool closed_ = false;
};

// content.OpenWriter: opens a Write stream with STAT{ref, total, expected}, retrying while the
// ref is locked (Unavailable) until the --timeout deadline.
Result<std::pair<std::unique_ptr<RemoteWriter>, int64_t>> OpenWriter(App& app,
                                                                     api::Content::Stub& stub,
                                                                     const std::string& ref,
                                                                     int64_t size,
                                                                     const std::string& expected) {
  auto timeout = ParseDuration(app.Flags().timeout);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout && timeout->count() > 0) deadline = std::chrono::steady_clock::now() + *timeout;
  std::mt19937 rng(std::random_device{}());
  int retry = 16;
  while (true) {
    auto ctx = app.NewContext();
    auto stream = stub.Write(ctx.get());
    auto writer = std::make_unique<RemoteWriter>(std::move(ctx), std::move(stream));
    api::WriteContentRequest req;
    req.set_action(api::STAT);
    req.set_ref(ref);
    req.set_total(size);
    req.set_expected(expected);
    auto resp = writer->Send(req);
    if (resp) return std::make_pair(std::move(writer), resp->offset());
    if (!resp.error().Is(Errc::kUnavailable) ||
        (deadline && std::chrono::steady_clock::now() >= *deadline)) {
      return std::move(resp).error();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % retry));
    if (retry < 2048) retry <<= 1;
  }
}

// content.WriteBlob(ctx, cs, ref, os.Stdin, {size, digest}).
Status Ingest(App& app, const std::string& ref, int64_t size, const std::string& expected) {
  BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
  auto opened = OpenWriter(app, *stub, ref, size, expected);
  if (!opened) {
    if (opened.error().Is(Errc::kAlreadyExists)) return Ok();  // already present
    return std::move(opened).error().Wrap("failed to open writer");
  }
  auto& [writer, negotiated] = *opened;
  int64_t offset = negotiated;

  api::WriteContentRequest stat;
  stat.set_action(api::STAT);
  auto ws = writer->Send(stat);
  if (!ws) return std::move(ws).error().Wrap("failed to get status: error getting writer status");
  if (ws->offset() > 0) {
    off_t pos = ::lseek(STDIN_FILENO, static_cast<off_t>(ws->offset()), SEEK_SET);
    if (pos != static_cast<off_t>(ws->offset())) {
      return Unknown(fmt::format(
          "unable to resume write to {}: failed to seek to offset {}: seek /dev/stdin: {}", ref,
          ws->offset(), GoErrno(errno)));
    }
  }

  int64_t copied = 0;
  std::string buf(1 << 20, '\0');
  while (true) {
    auto got = ReadFull(buf);
    if (!got) return std::move(got).error().Wrap("failed to copy");
    size_t n = *got;
    if (n == 0) break;
    api::WriteContentRequest req;
    req.set_action(api::WRITE);
    req.set_offset(offset);
    req.set_data(buf.data(), n);
    auto resp = writer->Send(req);
    if (!resp) return std::move(resp).error().Wrap("failed to copy: failed to send write");
    int64_t written = resp->offset() - offset;
    if (written > 0) {
      copied += written;
      offset += written;
    }
    if (written < static_cast<int64_t>(n)) return Unknown("failed to copy: short write");
    if (n < buf.size()) break;
  }
  if (size != 0 && copied < size - ws->offset()) {
    return Unknown("failed to read expected number of bytes: unexpected EOF");
  }

  api::WriteContentRequest commit;
  commit.set_action(api::COMMIT);
  commit.set_total(size);
  commit.set_offset(offset);
  commit.set_expected(expected);
  auto resp = writer->Send(commit);
  writer->Close();
  std::string on_ref = fmt::format("failed commit on ref {:?}", ref);
  if (!resp) {
    if (resp.error().Is(Errc::kAlreadyExists)) return Ok();
    return std::move(resp).error().Wrap(on_ref + ": commit failed");
  }
  if (size != 0 && resp->offset() != size) {
    return Unknown(fmt::format("{}: unexpected size: {} != {}", on_ref, resp->offset(), size));
  }
  if (!expected.empty() && resp->digest() != expected) {
    return Unknown(
        fmt::format("{}: unexpected digest: {} != {}", on_ref, resp->digest(), expected));
  }
  return Ok();
}

}  // namespace

void AddContentCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("content", "manage content");
  group->require_subcommand(1);

  {
    auto* cmd = group->add_subcommand("active", "display active transfers");
    auto args = std::make_shared<std::vector<std::string>>();
    auto unused = std::make_shared<std::string>();
    auto format = std::make_shared<std::string>("table");
    cmd->add_option("regexp", *args, "[<regexp>]");
    AddFormatFlag(cmd, format);
    cmd->add_option("-t,--timeout", *unused, "total timeout for fetch (unused, as in ctr)")
        ->envname("CONTAINERD_FETCH_TIMEOUT");
    cmd->add_option("--root", *unused, "path to content store root (unused, as in ctr)")
        ->default_str("/tmp/content");
    SetAction(cmd, [&app, args, format]() -> Status {
      BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(*format));
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      api::ListStatusesRequest req;
      req.add_filters(args->empty() ? std::string() : (*args)[0]);
      api::ListStatusesResponse resp;
      auto ctx = app.NewContext();
      if (auto st = stub->ListStatuses(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
      Table table({{"REF", "ref"},
                   {"SIZE", "offset"},
                   {"", "total"},
                   {"AGE", "started_at"},
                   {"", "updated_at"}},
                  {.writer = TabWriter::Tabs(1, 8, 1)});
      for (const auto& s : resp.statuses()) {
        table.Add({s.ref(), NumberCell(HumanSize(static_cast<double>(s.offset())), s.offset()),
                   NumberCell("", s.total()),
                   TimeCell(HumanDuration(Since(s.started_at())), s.started_at().seconds(),
                            s.started_at().nanos()),
                   TimeCell("", s.updated_at().seconds(), s.updated_at().nanos())});
      }
      fmt::print("{}", table.Render(output));
      return Ok();
    });
  }
  {
    auto* cmd = group->add_subcommand("delete", "permanently delete one or more blobs");
    cmd->alias("del");
    cmd->alias("remove");
    cmd->alias("rm");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("digests", *args, "[<digest>, ...]");
    SetAction(cmd, [&app, args]() -> Status {
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      std::optional<Error> exit_error;
      for (const auto& arg : *args) {
        // The first failure is printed once, as the command's error; later ones are logged.
        if (auto st = ValidateDigest(arg); !st) {
          if (!exit_error) {
            exit_error = std::move(st).error();
          } else {
            log::L().WithError(st.error()).Error("could not delete " + arg);
          }
          continue;
        }
        api::DeleteContentRequest req;
        req.set_digest(arg);
        google::protobuf::Empty resp;
        auto ctx = app.NewContext();
        if (auto st = stub->Delete(ctx.get(), req, &resp); !st.ok()) {
          Error err = FromGrpc(st);
          if (!err.Is(Errc::kNotFound)) {
            if (!exit_error) {
              exit_error = std::move(err).Wrap("could not delete " + arg);
            } else {
              log::L().WithError(err).Error("could not delete " + arg);
            }
          }
          continue;
        }
        fmt::print("{}\n", arg);
      }
      if (exit_error) return *exit_error;
      return Ok();
    });
  }
  {
    auto* cmd = group->add_subcommand("get", "get the data for an object");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("digests", *args, "[<digest>, ...] (only the first is read, as in ctr)");
    SetAction(cmd, [&app, args]() -> Status {
      std::string dgst = args->empty() ? std::string() : (*args)[0];
      BERTH_TRY(ValidateDigest(dgst));
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      api::InfoRequest ireq;
      ireq.set_digest(dgst);
      api::InfoResponse iresp;
      auto ictx = app.NewContext();
      if (auto st = stub->Info(ictx.get(), ireq, &iresp); !st.ok()) return FromGrpc(st);
      if (iresp.info().size() <= 0) return Ok();
      api::ReadContentRequest req;
      req.set_digest(dgst);
      auto ctx = app.NewContext();
      auto reader = stub->Read(ctx.get(), req);
      api::ReadContentResponse resp;
      while (reader->Read(&resp)) {
        const std::string& data = resp.data();
        if (!data.empty() && std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) {
          ctx->TryCancel();
          (void)reader->Finish();
          return Unknown(fmt::format("write /dev/stdout: {}", GoErrno(errno)));
        }
      }
      if (auto st = reader->Finish(); !st.ok()) return FromGrpc(st);
      std::fflush(stdout);
      return Ok();
    });
  }
  {
    auto* cmd = group->add_subcommand("ingest", "accept content into the store");
    auto ref = std::make_shared<std::string>();
    auto expected_size = std::make_shared<int64_t>(0);
    auto expected_digest = std::make_shared<std::string>();
    cmd->add_option("ref", *ref, "<key>");
    cmd->add_option("--expected-size", *expected_size, "validate against provided size");
    cmd->add_option("--expected-digest", *expected_digest,
                    "verify content against expected digest");
    SetAction(cmd, [&app, ref, expected_size, expected_digest]() -> Status {
      if (!expected_digest->empty()) BERTH_TRY(ValidateDigest(*expected_digest));
      if (ref->empty()) return Unknown("must specify a transaction reference");
      return Ingest(app, *ref, *expected_size, *expected_digest);
    });
  }
  {
    auto* cmd = group->add_subcommand("list", "list all blobs in the store");
    cmd->alias("ls");
    auto quiet = std::make_shared<bool>(false);
    auto format = std::make_shared<std::string>("table");
    auto filters = std::make_shared<std::vector<std::string>>();
    cmd->add_flag("-q,--quiet", *quiet, "print only the blob digest");
    AddFormatFlag(cmd, format);
    cmd->add_option("filters", *filters, "[<filter>, ...]");
    SetAction(cmd, [&app, quiet, format, filters]() -> Status {
      BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(*format));
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      api::ListContentRequest req;
      for (const auto& f : *filters) req.add_filters(f);
      auto ctx = app.NewContext();
      auto reader = stub->List(ctx.get(), req);
      Table table({{"DIGEST", "digest"},
                   {"SIZE", "size"},
                   {"AGE", "created_at"},
                   {"", "updated_at"},
                   {"LABELS", "labels"}},
                  {.writer = TabWriter::Tabs(1, 8, 1), .header_end = "\n", .row_end = "\n"});
      api::ListContentResponse resp;
      while (reader->Read(&resp)) {
        for (const auto& info : resp.info()) {
          if (*quiet) {
            fmt::print("{}\n", info.digest());
            continue;
          }
          table.Add({info.digest(),
                     NumberCell(HumanSize(static_cast<double>(info.size())), info.size()),
                     TimeCell(HumanDuration(Since(info.created_at())), info.created_at().seconds(),
                              info.created_at().nanos()),
                     TimeCell("", info.updated_at().seconds(), info.updated_at().nanos()),
                     LabelsCell(SortedLabels(info.labels()))});
        }
      }
      grpc::Status st = reader->Finish();
      if (!st.ok()) return FromGrpc(st);
      if (!*quiet) fmt::print("{}", table.Render(output));
      return Ok();
    });
  }
  {
    auto* cmd = group->add_subcommand("label", "add labels to content");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<digest> [<label>=<value> ...]");
    SetAction(cmd, [&app, args]() -> Status {
      BERTH_ASSIGN_OR_RETURN(auto stub, Stub(app));
      std::string object = args->empty() ? std::string() : (*args)[0];
      BERTH_TRY(ValidateDigest(object));
      auto labels = LabelArgs(*args, 1);
      api::Info info;
      auto ctx = app.NewContext();
      if (labels.empty()) {
        // Nothing to update: do not clear, just show.
        api::InfoRequest req;
        req.set_digest(object);
        api::InfoResponse resp;
        if (auto st = stub->Info(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
        info = resp.info();
      } else {
        api::UpdateRequest req;
        req.mutable_info()->set_digest(object);
        for (const auto& [k, v] : labels) {
          req.mutable_update_mask()->add_paths("labels." + k);
          if (!v.empty()) (*req.mutable_info()->mutable_labels())[k] = v;
        }
        api::UpdateResponse resp;
        if (auto st = stub->Update(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
        info = resp.info();
      }
      fmt::print("{}\n", JoinLabels(SortedLabels(info.labels())));
      return Ok();
    });
  }
  AddContentFetchCommands(group, app);
}

}  // namespace berth::cli
