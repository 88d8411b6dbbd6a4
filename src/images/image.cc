#include "images/image.h"

#include <algorithm>
#include <mutex>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/json_depth.h"

namespace berth::images {

// ---- Platforms ----

namespace {

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// platformVector: the platform and those it can also run, best first.
std::vector<Platform> PlatformVector(const Platform& p) {
  std::vector<Platform> v{p};
  auto version = [](std::string_view variant) -> int {
    if (!variant.empty() && variant[0] == 'v') variant.remove_prefix(1);
    if (variant.empty()) return -1;
    int n = 0;
    for (char c : variant) {
      if (c < '0' || c > '9') return -1;
      n = n * 10 + (c - '0');
    }
    return n;
  };
  if (p.architecture == "amd64") {
    int n = version(p.variant);
    if (n > 1) {
      for (--n; n >= 1; --n) v.push_back({p.os, p.architecture, fmt::format("v{}", n)});
    }
    v.push_back({p.os, "386", ""});
  } else if (p.architecture == "arm") {
    int n = version(p.variant);
    if (n > 5) {
      for (--n; n >= 5; --n) v.push_back({p.os, p.architecture, fmt::format("v{}", n)});
    }
  } else if (p.architecture == "arm64") {
    std::string variant = p.variant.empty() ? "v8" : p.variant;
    auto arm = PlatformVector({p.os, "arm", variant});
    v.insert(v.end(), arm.begin(), arm.end());
  }
  return v;
}

}  // namespace

Platform NormalizePlatform(Platform p) {
  p.os = p.os.empty() ? "linux" : Lower(p.os);
  if (p.os == "macos") p.os = "darwin";
  p.architecture = Lower(p.architecture);
  p.variant = Lower(p.variant);
  const std::string& arch = p.architecture;
  if (arch == "i386") {
    p.architecture = "386";
    p.variant = "";
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    p.architecture = "amd64";
    if (p.variant == "v1") p.variant = "";
  } else if (arch == "aarch64" || arch == "arm64") {
    p.architecture = "arm64";
    if (p.variant == "8" || p.variant == "v8") p.variant = "";
  } else if (arch == "armhf") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (arch == "armel") {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (arch == "arm") {
    if (p.variant.empty() || p.variant == "7") {
      p.variant = "v7";
    } else if (p.variant == "5" || p.variant == "6" || p.variant == "8") {
      p.variant = "v" + p.variant;
    }
  }
  return p;
}

std::string FormatPlatform(const Platform& p) {
  if (p.os.empty()) return "unknown";
  std::string out = p.os;
  for (const std::string* part : {&p.architecture, &p.variant}) {
    if (!part->empty()) out += "/" + *part;
  }
  return out;
}

Platform DefaultPlatform() {
#if defined(__x86_64__)
  return {"linux", "amd64", ""};
#elif defined(__aarch64__)
  return {"linux", "arm64", "v8"};
#elif defined(__arm__)
  return {"linux", "arm", "v7"};
#elif defined(__i386__)
  return {"linux", "386", ""};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return {"linux", "ppc64le", ""};
#elif defined(__s390x__)
  return {"linux", "s390x", ""};
#elif defined(__riscv) && __riscv_xlen == 64
  return {"linux", "riscv64", ""};
#else
  return {"linux", "unknown", ""};
#endif
}

namespace {

bool IsKnownOs(std::string_view os) {
  static const std::set<std::string_view> kOs = {
      "aix",   "android", "darwin", "dragonfly", "freebsd", "hurd",    "illumos", "ios", "js",
      "linux", "nacl",    "netbsd", "openbsd",   "plan9",   "solaris", "windows", "zos"};
  return kOs.count(os) > 0;
}

bool IsKnownArch(std::string_view arch) {
  static const std::set<std::string_view> kArch = {
      "386",     "amd64",   "amd64p32", "arm",    "armbe",  "arm64",    "arm64be",   "ppc64",
      "ppc64le", "loong64", "mips",     "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le",
      "ppc",     "riscv",   "riscv64",  "s390",   "s390x",  "sparc",    "sparc64",   "wasm"};
  return kArch.count(arch) > 0;
}

}  // namespace

Result<Platform> ParsePlatformSpec(const std::string& spec) {
  if (spec.find('*') != std::string::npos) {
    return InvalidArgument(fmt::format("{:?}: wildcards not yet supported", spec));
  }
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = spec.find('/', start);
    parts.push_back(spec.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (const auto& part : parts) {
    bool ok = !part.empty();
    for (char c : part) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-');
    }
    if (!ok) {
      return InvalidArgument(fmt::format("{:?}: must be form os/arch/variant", spec));
    }
  }
  Platform host = DefaultPlatform();
  Platform p;
  switch (parts.size()) {
    case 1: {
      std::string word = Lower(parts[0]);
      if (IsKnownOs(word) || word == "macos") {
        p = {word, host.architecture, host.variant};
      } else {
        Platform arch = NormalizePlatform({host.os, word, ""});
        if (!IsKnownArch(arch.architecture)) {
          return InvalidArgument(
              fmt::format("{:?}: unknown operating system or architecture", spec));
        }
        p = {host.os, word, ""};
      }
      break;
    }
    case 2:
      p = {parts[0], parts[1], ""};
      break;
    case 3:
      p = {parts[0], parts[1], parts[2]};
      break;
    default:
      return InvalidArgument(fmt::format("{:?}: cannot parse platform specifier", spec));
  }
  return NormalizePlatform(p);
}

PlatformMatcher PlatformMatcher::Only(const Platform& p) {
  PlatformMatcher m;
  for (const auto& q : PlatformVector(NormalizePlatform(p))) {
    m.platforms_.push_back(NormalizePlatform(q));
  }
  return m;
}

bool PlatformMatcher::Match(const Platform& p) const {
  Platform n = NormalizePlatform(p);
  return std::find(platforms_.begin(), platforms_.end(), n) != platforms_.end();
}

bool PlatformMatcher::Less(const Platform& a, const Platform& b) const {
  Platform na = NormalizePlatform(a);
  Platform nb = NormalizePlatform(b);
  for (const auto& m : platforms_) {
    bool am = m == na;
    bool bm = m == nb;
    if (am && !bm) return true;
    if (am || bm) return false;
  }
  return false;
}

// ---- JSON documents (Go's encoding/json into the ocispec structs, as far as ctr relies on) ----

namespace {

using Json = nlohmann::json;

std::string GoJsonType(const Json& j) {
  if (j.is_string()) return "string";
  if (j.is_number()) return "number";
  if (j.is_boolean()) return "bool";
  if (j.is_array()) return "array";
  if (j.is_object()) return "object";
  return "null";
}

Error TypeError(const Json& j, std::string_view field, std::string_view type) {
  return Unknown(fmt::format("json: cannot unmarshal {} into Go struct field {} of type {}",
                             GoJsonType(j), field, type));
}

Result<Json> ParseJson(std::string_view text, std::string_view go_type) {
  BERTH_TRY(CheckJsonDepth(text, fmt::format("unmarshal {}", go_type)));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    bool blank = std::all_of(text.begin(), text.end(), [](char c) {
      return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    });
    if (blank) return Unknown("unexpected end of JSON input");
    return Unknown("invalid character looking for beginning of value");
  }
  if (!j.is_object() && !j.is_null()) {
    return Unknown(
        fmt::format("json: cannot unmarshal {} into Go value of type {}", GoJsonType(j), go_type));
  }
  return j;
}

// A string field; null or absent leaves "".
Status GetString(const Json& obj, const char* key, std::string_view field, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Ok();
  if (!it->is_string()) return TypeError(*it, field, "string");
  out = it->get<std::string>();
  return Ok();
}

Result<Platform> ParsePlatform(const Json& j) {
  if (!j.is_object()) return TypeError(j, "Descriptor.platform", "v1.Platform");
  Platform p;
  BERTH_TRY(GetString(j, "os", "Descriptor.platform.os", p.os));
  BERTH_TRY(GetString(j, "architecture", "Descriptor.platform.architecture", p.architecture));
  BERTH_TRY(GetString(j, "variant", "Descriptor.platform.variant", p.variant));
  return p;
}

Result<OciDescriptor> ParseDescriptor(const Json& j, std::string_view field) {
  OciDescriptor d;
  if (j.is_null()) return d;
  if (!j.is_object()) return TypeError(j, field, "v1.Descriptor");
  BERTH_TRY(GetString(j, "mediaType", fmt::format("{}.mediaType", field), d.media_type));
  BERTH_TRY(GetString(j, "digest", fmt::format("{}.digest", field), d.digest));
  if (auto it = j.find("size"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return TypeError(*it, fmt::format("{}.size", field), "int64");
    d.size = it->get<int64_t>();
  }
  if (auto it = j.find("platform"); it != j.end() && !it->is_null()) {
    BERTH_ASSIGN_OR_RETURN(auto p, ParsePlatform(*it));
    d.platform = std::move(p);
  }
  return d;
}

Result<std::vector<OciDescriptor>> ParseDescriptorList(const Json& obj, const char* key,
                                                       std::string_view field) {
  std::vector<OciDescriptor> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return TypeError(*it, field, "[]v1.Descriptor");
  for (const auto& e : *it) {
    BERTH_ASSIGN_OR_RETURN(auto d, ParseDescriptor(e, field));
    out.push_back(std::move(d));
  }
  return out;
}

Result<OciManifest> ParseManifest(std::string_view blob) {
  BERTH_ASSIGN_OR_RETURN(Json j, ParseJson(blob, "v1.Manifest"));
  OciManifest m;
  if (j.is_null()) return m;
  if (auto it = j.find("config"); it != j.end()) {
    BERTH_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*it, "Manifest.config"));
  }
  BERTH_ASSIGN_OR_RETURN(m.layers, ParseDescriptorList(j, "layers", "Manifest.layers"));
  return m;
}

Result<std::vector<OciDescriptor>> ParseIndexManifests(std::string_view blob) {
  BERTH_ASSIGN_OR_RETURN(Json j, ParseJson(blob, "v1.Index"));
  if (j.is_null()) return std::vector<OciDescriptor>{};
  return ParseDescriptorList(j, "manifests", "Index.manifests");
}

struct ImageConfig {
  Platform platform;
  std::vector<std::string> diff_ids;
};

Result<ImageConfig> ParseImageConfig(std::string_view blob) {
  BERTH_ASSIGN_OR_RETURN(Json j, ParseJson(blob, "v1.Image"));
  ImageConfig c;
  if (j.is_null()) return c;
  BERTH_TRY(GetString(j, "os", "Image.os", c.platform.os));
  BERTH_TRY(GetString(j, "architecture", "Image.architecture", c.platform.architecture));
  if (auto it = j.find("rootfs"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError(*it, "Image.rootfs", "v1.RootFS");
    if (auto d = it->find("diff_ids"); d != it->end() && !d->is_null()) {
      if (!d->is_array()) return TypeError(*d, "Image.rootfs.diff_ids", "[]digest.Digest");
      for (const auto& e : *d) {
        if (!e.is_string()) return TypeError(e, "Image.rootfs.diff_ids", "digest.Digest");
        c.diff_ids.push_back(e.get<std::string>());
      }
    }
  }
  return c;
}

bool IsManifestType(std::string_view mt) {
  return mt == kMediaTypeDockerManifest || mt == kMediaTypeOciManifest;
}
bool IsIndexType(std::string_view mt) {
  return mt == kMediaTypeDockerManifestList || mt == kMediaTypeOciIndex;
}
bool IsConfigType(std::string_view mt) {
  return mt == kMediaTypeDockerConfig || mt == kMediaTypeOciConfig;
}

// images.validateMediaType: a manifest must not look like an index and the other way round.
Status ValidateMediaType(std::string_view blob, std::string_view mt) {
  BERTH_ASSIGN_OR_RETURN(Json j, ParseJson(blob, "images.unknownDocument"));
  if (j.is_null()) return Ok();
  std::string doc_type;
  BERTH_TRY(GetString(j, "mediaType", "unknownDocument.mediaType", doc_type));
  auto has = [&](const char* key) { return j.contains(key); };
  if (has("fsLayers")) return Unknown("media-type: schema 1 not supported");
  if (IsManifestType(mt)) {
    if (has("manifests") || IsIndexType(doc_type)) {
      return Unknown(fmt::format("media-type: expected manifest but found index ({})", mt));
    }
  } else if (IsIndexType(mt)) {
    if (has("config") || has("layers") || IsManifestType(doc_type)) {
      return Unknown(fmt::format("media-type: expected index but found manifest ({})", mt));
    }
  }
  return Ok();
}

// The children of an index kept for the platform (nil platforms last), at most one.
std::vector<OciDescriptor> LimitToPlatform(std::vector<OciDescriptor> descs,
                                           const PlatformMatcher& platform) {
  std::vector<OciDescriptor> kept;
  for (auto& d : descs) {
    if (!d.platform || platform.Match(*d.platform)) kept.push_back(std::move(d));
  }
  std::stable_sort(kept.begin(), kept.end(), [&](const OciDescriptor& a, const OciDescriptor& b) {
    if (!a.platform) return false;
    if (!b.platform) return true;
    return platform.Less(*a.platform, *b.platform);
  });
  if (kept.size() > 1) kept.resize(1);
  return kept;
}

Status SizeWalk(const BlobReader& read, const std::vector<OciDescriptor>& descs,
                const PlatformMatcher& platform, int64_t& size) {
  for (const auto& desc : descs) {
    if (desc.size < 0) {
      return Unknown(
          fmt::format("invalid size {} in {} ({})", desc.size, desc.digest, desc.media_type));
    }
    size += desc.size;
    BERTH_ASSIGN_OR_RETURN(auto children, ImageChildren(read, desc));
    std::vector<OciDescriptor> kept;
    for (auto& d : children) {
      if (!d.platform || platform.Match(*d.platform)) kept.push_back(std::move(d));
    }
    if (IsIndexType(desc.media_type)) {
      kept = LimitToPlatform(std::move(kept), platform);
      if (kept.empty()) return NotFound("no match for platform in manifest");
    }
    if (!kept.empty()) BERTH_TRY(SizeWalk(read, kept, platform, size));
  }
  return Ok();
}

Status PlatformsWalk(const BlobReader& read, const std::vector<OciDescriptor>& descs,
                     std::vector<Platform>& out) {
  for (const auto& desc : descs) {
    if (desc.platform) {
      out.push_back(*desc.platform);
      continue;  // ErrSkipDesc: children not visited
    }
    if (IsConfigType(desc.media_type)) {
      BERTH_ASSIGN_OR_RETURN(std::string blob, read(desc));
      BERTH_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(blob));
      out.push_back(NormalizePlatform(config.platform));
    }
    BERTH_ASSIGN_OR_RETURN(auto children, ImageChildren(read, desc));
    if (!children.empty()) BERTH_TRY(PlatformsWalk(read, children, out));
  }
  return Ok();
}

struct ManifestWalk {
  const BlobReader& read;
  const OciDescriptor& image;
  const PlatformMatcher& platform;
  std::vector<OciManifest> found;
  bool was_index = false;

  Status Walk(const std::vector<OciDescriptor>& descs) {
    for (const auto& desc : descs) {
      if (IsManifestType(desc.media_type)) {
        BERTH_ASSIGN_OR_RETURN(std::string blob, read(desc));
        if (auto st = ValidateMediaType(blob, desc.media_type); !st) {
          return std::move(st).error().Wrap(fmt::format("manifest: invalid desc {}", desc.digest));
        }
        BERTH_ASSIGN_OR_RETURN(OciManifest manifest, ParseManifest(blob));
        if (desc.digest != image.digest) {
          if (desc.platform && !platform.Match(*desc.platform)) continue;
          if (!desc.platform) {
            BERTH_ASSIGN_OR_RETURN(std::string config_blob, read(manifest.config));
            BERTH_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(config_blob));
            Platform p{config.platform.os, config.platform.architecture, ""};
            if (!platform.Match(NormalizePlatform(p))) continue;
          }
        }
        found.push_back(std::move(manifest));
      } else if (IsIndexType(desc.media_type)) {
        BERTH_ASSIGN_OR_RETURN(std::string blob, read(desc));
        if (auto st = ValidateMediaType(blob, desc.media_type); !st) {
          return std::move(st).error().Wrap(fmt::format("manifest: invalid desc {}", desc.digest));
        }
        BERTH_ASSIGN_OR_RETURN(auto manifests, ParseIndexManifests(blob));
        was_index = true;
        auto kept = LimitToPlatform(std::move(manifests), platform);
        if (!kept.empty()) BERTH_TRY(Walk(kept));
      } else {
        return NotFound(
            fmt::format("unexpected media type {} for {}", desc.media_type, desc.digest));
      }
    }
    return Ok();
  }
};

}  // namespace

Result<std::vector<OciDescriptor>> ImageChildren(const BlobReader& read,
                                                 const OciDescriptor& desc) {
  if (IsManifestType(desc.media_type)) {
    BERTH_ASSIGN_OR_RETURN(std::string blob, read(desc));
    if (auto st = ValidateMediaType(blob, desc.media_type); !st) {
      return std::move(st).error().Wrap(fmt::format("children: invalid desc {}", desc.digest));
    }
    BERTH_ASSIGN_OR_RETURN(OciManifest manifest, ParseManifest(blob));
    std::vector<OciDescriptor> out{manifest.config};
    out.insert(out.end(), manifest.layers.begin(), manifest.layers.end());
    return out;
  }
  if (IsIndexType(desc.media_type)) {
    BERTH_ASSIGN_OR_RETURN(std::string blob, read(desc));
    if (auto st = ValidateMediaType(blob, desc.media_type); !st) {
      return std::move(st).error().Wrap(fmt::format("children: invalid desc {}", desc.digest));
    }
    return ParseIndexManifests(blob);
  }
  return std::vector<OciDescriptor>{};
}

SizeResult ImageSize(const BlobReader& read, const OciDescriptor& target,
                     const PlatformMatcher& platform) {
  SizeResult r;
  if (auto st = SizeWalk(read, {target}, platform, r.size); !st) r.error = std::move(st).error();
  return r;
}

Result<std::vector<Platform>> ImagePlatforms(const BlobReader& read, const OciDescriptor& target) {
  std::vector<Platform> out;
  BERTH_TRY(PlatformsWalk(read, {target}, out));
  return out;
}

Result<OciManifest> ImageManifest(const BlobReader& read, const OciDescriptor& target,
                                  const PlatformMatcher& platform) {
  ManifestWalk walk{read, target, platform, {}, false};
  BERTH_TRY(walk.Walk({target}));
  if (walk.found.empty()) {
    if (walk.was_index) {
      return NotFound(fmt::format("no match for platform in manifest {}", target.digest));
    }
    return NotFound(fmt::format("manifest {}", target.digest));
  }
  return std::move(walk.found.front());
}

Result<CheckResult> CheckImage(const BlobReader& read, const BlobStat& stat,
                               const OciDescriptor& target, const PlatformMatcher& platform) {
  CheckResult r;
  auto manifest = ImageManifest(read, target, platform);
  if (!manifest) {
    if (manifest.error().Is(Errc::kNotFound)) {
      r.required = {target};
      r.missing = {target};
      return r;
    }
    return std::move(manifest).error().Wrap(fmt::format("failed to check image {}", target.digest));
  }
  r.available = true;
  r.required.push_back(manifest->config);
  r.required.insert(r.required.end(), manifest->layers.begin(), manifest->layers.end());
  for (const auto& desc : r.required) {
    Status st = stat(desc);
    if (!st) {
      if (st.error().Is(Errc::kNotFound)) {
        r.missing.push_back(desc);
        continue;
      }
      return std::move(st).error().Wrap(fmt::format("failed to check image {}", desc.digest));
    }
    r.present.push_back(desc);
  }
  return r;
}

Result<std::vector<std::string>> ImageRootFs(const BlobReader& read, const OciDescriptor& target,
                                             const PlatformMatcher& platform) {
  BERTH_ASSIGN_OR_RETURN(OciManifest manifest, ImageManifest(read, target, platform));
  BERTH_ASSIGN_OR_RETURN(std::string blob, read(manifest.config));
  BERTH_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(blob));
  return config.diff_ids;
}

std::string ChainId(const std::vector<std::string>& diff_ids) {
  if (diff_ids.empty()) return "";
  std::string chain = diff_ids[0];
  for (size_t i = 1; i < diff_ids.size(); ++i) {
    chain = Digest::FromBytes(chain + " " + diff_ids[i]).String();
  }
  return chain;
}

}  // namespace berth::images
