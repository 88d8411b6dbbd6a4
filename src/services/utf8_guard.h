#pragma once
// Requests whose string fields are not valid UTF-8 (issue 13, point 3). Generated code parses
// them leniently (cmake/proto_lenient_utf8.sed); an interceptor checks every request message of
// a generated service as it arrives and keeps what it found for the call, and the service edge
// (ContextFrom, the CRI's Run, each message of Content.Write) answers InvalidArgument naming
// the field, before any work. google.protobuf's own types (Any, FieldMask) come compiled with
// libprotobuf and still refuse such strings at parse time (the call then fails as gRPC makes it).
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <optional>
#include <string>

#include "common/errdefs.h"

namespace berth::services {

// The path of the first string field of `msg` (nested messages and map entries included) that
// is not valid UTF-8, e.g. "ref", "expected.digest", "labels[\"k\"]"; nullopt if there is none.
std::optional<std::string> FindInvalidUtf8(const google::protobuf::Message& msg);

// The InvalidArgument for the call's last request message with invalid UTF-8, if any.
std::optional<Error> InvalidUtf8Error(const grpc::ServerContextBase* rpc);

// For ServerBuilder::experimental().SetInterceptorCreators.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewUtf8GuardFactory();

}  // namespace berth::services
