#include "services/content_write.h"

#include <fmt/format.h>

#include "common/proto_time.h"

namespace berth::services {
namespace {

namespace api = containerd::services::content::v1;

}  // namespace

void WriteSession::Close() {
  if (writer_) (void)writer_->Close();
  writer_.reset();
}

Status WriteSession::Step(const api::WriteContentRequest& req, api::WriteContentResponse* resp) {
  resp->Clear();
  if (!writer_) {
    if (req.ref().empty()) return InvalidArgument("first message must have a reference");
    ref_ = req.ref();
    total_ = req.total();
    if (!req.expected().empty()) {
      BERTH_ASSIGN_OR_RETURN(expected_, Digest::Parse(req.expected()));
    }
    BERTH_ASSIGN_OR_RETURN(
        writer_, store_.Writer(ctx_, {.ref = ref_, .desc = {.digest = expected_, .size = total_}}));
  } else if (!req.ref().empty() && req.ref() != ref_) {
    return InvalidArgument(
        fmt::format("changing ref from {:?} to {:?} not allowed", ref_, req.ref()));
  }
  if (req.total() > 0) total_ = req.total();
  if (!req.expected().empty()) {
    BERTH_ASSIGN_OR_RETURN(expected_, Digest::Parse(req.expected()));
  }
  if (total_ < 0) return InvalidArgument(fmt::format("total {} must not be negative", total_));
  resp->set_action(req.action());
  BERTH_ASSIGN_OR_RETURN(content::Status ws, writer_->Status());
  resp->set_offset(ws.offset);
  switch (req.action()) {
    case api::STAT:
      resp->set_total(total_);
      SetTimestamp(ws.started_at, resp->mutable_started_at());
      SetTimestamp(ws.updated_at, resp->mutable_updated_at());
      resp->set_digest(writer_->Digest().String());
      return Ok();
    case api::WRITE:
    case api::COMMIT: {
      if (req.offset() > 0) {
        if (req.offset() != ws.offset) {
          return OutOfRange(
              fmt::format("write @{} must occur at current offset {}", req.offset(), ws.offset));
        }
      } else if (req.offset() == 0 && ws.offset > 0 && !req.data().empty()) {
        BERTH_TRY(writer_->Truncate(0));
        resp->set_offset(0);
      } else if (req.offset() < 0) {
        return InvalidArgument(fmt::format("negative offset {}", req.offset()));
      }
      // The expected total is advisory while writing (as in containerd): Commit checks the size
      // it is given.
      if (!req.data().empty()) {
        BERTH_TRY(writer_->Write(req.data()));
        resp->set_offset(resp->offset() + static_cast<int64_t>(req.data().size()));
      }
      if (req.action() == api::COMMIT) {
        BERTH_TRY(writer_->Commit(total_, expected_, {req.labels().begin(), req.labels().end()}));
        resp->set_digest(writer_->Digest().String());
        writer_.reset();
      }
      return Ok();
    }
    default:
      return InvalidArgument(
          fmt::format("unknown write action {}", static_cast<int>(req.action())));
  }
}

}  // namespace berth::services
