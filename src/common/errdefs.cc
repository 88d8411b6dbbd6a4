#include "common/errdefs.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace berth {

std::string_view ErrcSuffix(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kNotFound:
      return "not found";
    case Errc::kAlreadyExists:
      return "already exists";
    case Errc::kFailedPrecondition:
      return "failed precondition";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kNotImplemented:
      return "not implemented";
    case Errc::kCanceled:
      return "context canceled";
    case Errc::kDeadlineExceeded:
      return "context deadline exceeded";
    case Errc::kUnknown:
    case Errc::kOutOfRange:
    case Errc::kResourceExhausted:
    case Errc::kDataLoss:
    case Errc::kAborted:
    case Errc::kPermissionDenied:
      return "";
  }
  return "";
}

int ErrcToGrpcCode(Errc code) {
  switch (code) {
    case Errc::kUnknown:
      return 2;
    case Errc::kInvalidArgument:
      return 3;
    case Errc::kNotFound:
      return 5;
    case Errc::kAlreadyExists:
      return 6;
    case Errc::kFailedPrecondition:
      return 9;
    case Errc::kUnavailable:
      return 14;
    case Errc::kNotImplemented:
      return 12;
    case Errc::kCanceled:
      return 1;
    case Errc::kDeadlineExceeded:
      return 4;
    case Errc::kOutOfRange:
      return 11;
    case Errc::kResourceExhausted:
      return 8;
    case Errc::kDataLoss:
      return 15;
    case Errc::kAborted:
      return 10;
    case Errc::kPermissionDenied:
      return 7;
  }
  return 2;
}

Errc ErrcFromGrpcCode(int grpc_code) {
  switch (grpc_code) {
    case 1:
      return Errc::kCanceled;
    case 3:
      return Errc::kInvalidArgument;
    case 4:
      return Errc::kDeadlineExceeded;
    case 5:
      return Errc::kNotFound;
    case 6:
      return Errc::kAlreadyExists;
    case 7:
      return Errc::kPermissionDenied;
    case 8:
      return Errc::kResourceExhausted;
    case 9:
      return Errc::kFailedPrecondition;
    case 10:
      return Errc::kAborted;
    case 11:
      return Errc::kOutOfRange;
    case 12:
      return Errc::kNotImplemented;
    case 14:
      return Errc::kUnavailable;
    case 15:
      return Errc::kDataLoss;
    default:
      return Errc::kUnknown;
  }
}

std::string Error::ToString() const {
  auto suffix = ErrcSuffix(code_);
  if (suffix.empty()) {
    return what_;
  }
  if (what_.empty()) {
    return std::string(suffix);
  }
  return what_ + ": " + std::string(suffix);
}

Error Error::Wrap(std::string_view context) && {
  what_ = std::string(context) + (what_.empty() ? "" : ": " + what_);
  return std::move(*this);
}

Error Error::Wrap(std::string_view context) const& {
  Error copy = *this;
  return std::move(copy).Wrap(context);
}

Error Unknown(std::string what) { return {Errc::kUnknown, std::move(what)}; }
Error InvalidArgument(std::string what) { return {Errc::kInvalidArgument, std::move(what)}; }
Error NotFound(std::string what) { return {Errc::kNotFound, std::move(what)}; }
Error AlreadyExists(std::string what) { return {Errc::kAlreadyExists, std::move(what)}; }
Error FailedPrecondition(std::string what) { return {Errc::kFailedPrecondition, std::move(what)}; }
Error Unavailable(std::string what) { return {Errc::kUnavailable, std::move(what)}; }
Error NotImplemented(std::string what) { return {Errc::kNotImplemented, std::move(what)}; }
Error OutOfRange(std::string what) { return {Errc::kOutOfRange, std::move(what)}; }

Error ErrnoError(int err, std::string what) {
  switch (err) {
    case ENOENT:
      return NotFound(std::move(what));
    case EEXIST:
      return AlreadyExists(std::move(what));
    case ENOSYS:
    case EOPNOTSUPP:
      return NotImplemented(std::move(what) + ": " + std::strerror(err));
    case EINVAL:
      return InvalidArgument(std::move(what) + ": " + std::strerror(err));
    case EACCES:
    case EPERM:
      return {Errc::kPermissionDenied, std::move(what) + ": " + std::strerror(err)};
    case EBUSY:
    case EAGAIN:
      return Unavailable(std::move(what) + ": " + std::strerror(err));
    default:
      return Unknown(std::move(what) + ": " + std::strerror(err));
  }
}

Error ErrorFromGrpc(int grpc_code, std::string_view message) {
  Errc code = ErrcFromGrpcCode(grpc_code);
  std::string what(message);
  auto suffix = ErrcSuffix(code);
  if (!suffix.empty()) {
    std::string tail = ": " + std::string(suffix);
    if (what.size() >= tail.size() &&
        what.compare(what.size() - tail.size(), tail.size(), tail) == 0) {
      what.resize(what.size() - tail.size());
    } else if (what == suffix) {
      what.clear();
    }
  }
  return {code, std::move(what)};
}

void CheckFailed(const char* file, int line, const char* cond, std::string_view msg) {
  std::fprintf(stderr, "berth: check failed at %s:%d: %s: %.*s\n", file, line, cond,
               static_cast<int>(msg.size()), msg.data());
  std::abort();
}

}  // namespace berth
