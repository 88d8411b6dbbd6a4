# containerd 1.6's API .proto files, taken at build time from Debian's
# golang-github-containerd-containerd-dev (and the gogo packages it depends on).
# They are copied into the build tree with `import weak` rewritten to `import`
# (protoc's C++ generator refuses weak imports; two more rewrites below say why), then
# compiled once into the static library `berth_api`. Nothing generated or copied is committed.

set(BERTH_GOCODE "/usr/share/gocode/src" CACHE PATH "Root of Debian's Go sources")
set(_ctrd "${BERTH_GOCODE}/github.com/containerd/containerd")
set(_required
  "${_ctrd}/api/services/version/v1/version.proto|golang-github-containerd-containerd-dev"
  "${BERTH_GOCODE}/github.com/gogo/protobuf/gogoproto/gogo.proto|golang-github-gogo-protobuf-dev"
  "${BERTH_GOCODE}/github.com/gogo/googleapis/google/rpc/status.proto|golang-github-gogo-googleapis-dev"
  "${BERTH_GOCODE}/github.com/containerd/cgroups/stats/v1/metrics.proto|golang-github-containerd-cgroups-dev")
foreach(item IN LISTS _required)
  string(REPLACE "|" ";" parts "${item}")
  list(GET parts 0 file)
  list(GET parts 1 pkg)
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "missing ${file}: install the Debian package '${pkg}' "
                        "(scripts/install-deps.sh does it)")
  endif()
endforeach()

set(BERTH_PROTO_DIR "${CMAKE_BINARY_DIR}/proto")
# Pairs: source file | import path inside the build tree.
set(_protos
  "${BERTH_GOCODE}/github.com/gogo/protobuf/gogoproto/gogo.proto|gogoproto/gogo.proto"
  "${BERTH_GOCODE}/github.com/gogo/googleapis/google/rpc/status.proto|google/rpc/status.proto"
  "${BERTH_GOCODE}/github.com/containerd/cgroups/stats/v1/metrics.proto|github.com/containerd/cgroups/stats/v1/metrics.proto"
  "${BERTH_GOCODE}/github.com/containerd/cgroups/v2/stats/metrics.proto|github.com/containerd/cgroups/v2/stats/metrics.proto")
foreach(rel
    protobuf/plugin/fieldpath.proto
    api/types/descriptor.proto api/types/metrics.proto api/types/mount.proto
    api/types/platform.proto api/types/task/task.proto
    api/events/container.proto api/events/content.proto api/events/image.proto
    api/events/namespace.proto api/events/snapshot.proto api/events/task.proto
    api/services/containers/v1/containers.proto api/services/content/v1/content.proto
    api/services/diff/v1/diff.proto api/services/events/v1/events.proto
    api/services/images/v1/images.proto api/services/introspection/v1/introspection.proto
    api/services/leases/v1/leases.proto api/services/namespaces/v1/namespace.proto
    api/services/snapshots/v1/snapshots.proto api/services/tasks/v1/tasks.proto
    api/services/ttrpc/events/v1/events.proto api/services/version/v1/version.proto
    runtime/v2/task/shim.proto runtime/v2/runc/options/oci.proto
    pkg/runtimeoptions/v1/api.proto)
  list(APPEND _protos "${_ctrd}/${rel}|github.com/containerd/containerd/${rel}")
endforeach()

set(BERTH_PROTO_SRCS)
set(BERTH_PROTO_HDRS)
foreach(item IN LISTS _protos)
  string(REPLACE "|" ";" parts "${item}")
  list(GET parts 0 src)
  list(GET parts 1 rel)
  file(READ "${src}" content)
  string(REPLACE "import weak " "import " content "${content}")
  # One file imports gogo by its Go path; everything else uses "gogoproto/gogo.proto".
  string(REPLACE "\"github.com/gogo/protobuf/gogoproto/gogo.proto\"" "\"gogoproto/gogo.proto\""
         content "${content}")
  # `requires` is a C++20 keyword that protoc 3.21 does not escape: rename the field in C++ only
  # (same number, same JSON name, so the wire format is unchanged).
  string(REPLACE "repeated string requires = 3;"
         "repeated string requires_types = 3 [json_name = \"requires\"];" content "${content}")
  set(dst "${BERTH_PROTO_DIR}/${rel}")
  # Only rewrite when changed, so unchanged protos are not recompiled.
  if(EXISTS "${dst}")
    file(READ "${dst}" old)
  else()
    set(old "")
  endif()
  if(NOT old STREQUAL content)
    file(WRITE "${dst}" "${content}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${src}")

  string(REGEX REPLACE "\\.proto$" "" base "${rel}")
  set(out_srcs "${BERTH_PROTO_DIR}/${base}.pb.cc")
  set(out_hdrs "${BERTH_PROTO_DIR}/${base}.pb.h")
  set(grpc_args)
  if(rel MATCHES "/api/services/")
    list(APPEND out_srcs "${BERTH_PROTO_DIR}/${base}.grpc.pb.cc")
    list(APPEND out_hdrs "${BERTH_PROTO_DIR}/${base}.grpc.pb.h")
    set(grpc_args --grpc_out=${BERTH_PROTO_DIR} --plugin=protoc-gen-grpc=${_grpc_plugin})
  endif()
  find_program(_grpc_plugin grpc_cpp_plugin REQUIRED)
  if(rel MATCHES "/api/services/")
    set(grpc_args --grpc_out=${BERTH_PROTO_DIR} --plugin=protoc-gen-grpc=${_grpc_plugin})
  endif()
  add_custom_command(
    OUTPUT ${out_srcs} ${out_hdrs}
    COMMAND protobuf::protoc -I${BERTH_PROTO_DIR} -I/usr/include
            --cpp_out=${BERTH_PROTO_DIR} ${grpc_args} ${dst}
    COMMAND sed -i -f ${CMAKE_SOURCE_DIR}/cmake/proto_lenient_utf8.sed ${out_srcs} ${out_hdrs}
    DEPENDS ${dst} protobuf::protoc ${CMAKE_SOURCE_DIR}/cmake/proto_lenient_utf8.sed
    COMMENT "protoc ${rel}" VERBATIM)
  list(APPEND BERTH_PROTO_SRCS ${out_srcs})
  list(APPEND BERTH_PROTO_HDRS ${out_hdrs})
endforeach()
