#pragma once
// The error model of the client library is berth's own (common/errdefs.h): every call returns a
// Status or a Result<T> whose Error carries one of containerd's classes (NotFound,
// AlreadyExists, ...) and a text naming what failed. Nothing throws. errdefs.h depends on the
// standard library only, so it ships with these headers.
#include "common/errdefs.h"

namespace berth {

// True when `r` failed with class `code` (e.g. IsError(r, Errc::kNotFound)).
template <typename R>
bool IsError(const R& r, Errc code) {
  return !r && r.error().Is(code);
}

}  // namespace berth
