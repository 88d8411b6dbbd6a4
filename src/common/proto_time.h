#pragma once
// google.protobuf.Timestamp <-> Timestamp, the one conversion every service, client and CLI
// uses: FromProtoTimestamp's range guard applies everywhere (a hostile or Go-zero value never
// overflows int64 nanoseconds).
#include <string>

#include <google/protobuf/timestamp.pb.h>

#include "common/timeutil.h"

namespace berth {

inline void SetTimestamp(Timestamp t, google::protobuf::Timestamp* out) {
  const ProtoTime p = ToProtoTimestamp(t);
  out->set_seconds(p.seconds);
  out->set_nanos(p.nanos);
}

// The zero Timestamp for a value outside years 1678..2261 (Go's zero time among them).
inline Timestamp FromProtoTime(const google::protobuf::Timestamp& ts) {
  return FromProtoTimestamp(ts.seconds(), ts.nanos());
}

// RFC 3339 with nanoseconds of the exact value, any year, as Go prints a time.Time.
inline std::string FormatProtoTime(const google::protobuf::Timestamp& ts) {
  return FormatRfc3339Nano(ProtoTime{.seconds = ts.seconds(), .nanos = ts.nanos()});
}

}  // namespace berth
