#pragma once
// How the CRI plugin persists its objects, as containerd 1.6 lays them out (reference/cri.md
// §16): sandbox and container metadata as a JSON extension of the containerd container record,
// {"Version":"v1","Metadata":{...}} (CRI configs with their proto field names), and each
// container's status as criRoot/containers/<id>/status (written atomically, 0600).
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "cri/store.h"

namespace berth::cri {

inline constexpr const char* kSandboxMetadataExtension = "io.cri-containerd.sandbox.metadata";
inline constexpr const char* kContainerMetadataExtension = "io.cri-containerd.container.metadata";
inline constexpr const char* kSandboxMetadataTypeUrl =
    "github.com/containerd/cri/pkg/store/sandbox/Metadata";
inline constexpr const char* kContainerMetadataTypeUrl =
    "github.com/containerd/cri/pkg/store/container/Metadata";

std::string EncodeSandboxMetadata(const SandboxMetadata& m);
// InvalidArgument naming what is malformed (an unknown Version included).
Result<SandboxMetadata> DecodeSandboxMetadata(std::string_view json);

std::string EncodeContainerMetadata(const ContainerMetadata& m);
Result<ContainerMetadata> DecodeContainerMetadata(std::string_view json);

// {"Version":"v1","Pid","CreatedAt","StartedAt","FinishedAt","ExitCode","Reason","Message"}.
std::string EncodeContainerStatus(const ContainerStatus& s);
Result<ContainerStatus> DecodeContainerStatus(std::string_view json);
// Writes the status file of a container dir atomically.
Status WriteContainerStatus(const std::string& dir, const ContainerStatus& s);
Result<ContainerStatus> ReadContainerStatus(const std::string& dir);

}  // namespace berth::cri
