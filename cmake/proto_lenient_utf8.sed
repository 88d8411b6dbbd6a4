# Applied to protoc's C++ output (protobuf 3.21): proto3 string fields are parsed without the
# UTF-8 check. A message with invalid UTF-8 in a string field would otherwise fail to parse, and
# gRPC C++ loses the reason: a unary callback call answers UNIMPLEMENTED with no message, a
# streamed request ends the stream as if the client had closed it. The daemon instead checks
# every request's strings at the service edge (services/utf8_guard.h) and answers
# InvalidArgument naming the field. Serializing still only logs.
s/CHK_(::_pbi::VerifyUTF8(str, "[^"]*"));/(void)str;/
s/return ::PROTOBUF_NAMESPACE_ID::internal::WireFormatLite::VerifyUtf8String(s->data(), static_cast<int>(s->size()), ::PROTOBUF_NAMESPACE_ID::internal::WireFormatLite::PARSE, "[^"]*");/return s != nullptr;/
