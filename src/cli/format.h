#pragma once
// Helpers shared by the content, images and leases commands: ctr's ways of printing sizes, ages,
// times and labels and digest checks with go-digest's messages.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"
#include "common/timeutil.h"
#include "images/image.h"

namespace berth::cli {

// ---- Text formatting ----

// Go's time.Time.String() of a UTC time: "2006-01-02 15:04:05.999999999 +0000 UTC" (any year).
std::string GoTimeString(int64_t secs, int32_t nanos);
std::string GoTimeString(std::chrono::system_clock::time_point t);
// Go's time.Time.MarshalJSON of a UTC time: RFC 3339 with nanoseconds, quoted; years outside
// [0, 9999] are an error, as in Go.
Result<std::string> GoTimeJson(int64_t secs, int32_t nanos);

// go-units HumanSize: 4 significant digits, decimal units, no space ("1.5kB", "999B").
std::string HumanSize(double size);
// containerd's progress.Bytes: one decimal, binary units, a space ("1.0 MiB", "0.0 B").
std::string ProgressBytes(int64_t size);
// go-units HumanDuration ("Less than a second", "3 seconds", "About a minute", "2 hours", ...).
std::string HumanDuration(std::chrono::nanoseconds d);

// "k=v" pairs sorted and joined by ","; `empty` when there are none.
std::string JoinLabels(const std::map<std::string, std::string>& labels,
                       std::string_view empty = "");

// go-digest's Digest.Validate, with its exact messages ("invalid checksum digest format", ...).
Status ValidateDigest(std::string_view text);

// The image types and walks the commands use live in images/.
using images::BlobReader;
using images::BlobStat;
using images::ChainId;
using images::CheckImage;
using images::CheckResult;
using images::DefaultPlatform;
using images::FormatPlatform;
using images::ImageChildren;
using images::ImageManifest;
using images::ImagePlatforms;
using images::ImageRootFs;
using images::ImageSize;
using images::kMediaTypeDockerConfig;
using images::kMediaTypeDockerManifest;
using images::kMediaTypeDockerManifestList;
using images::kMediaTypeOciConfig;
using images::kMediaTypeOciIndex;
using images::kMediaTypeOciManifest;
using images::NormalizePlatform;
using images::OciDescriptor;
using images::OciManifest;
using images::Platform;
using images::PlatformMatcher;
using images::SizeResult;

}  // namespace berth::cli
