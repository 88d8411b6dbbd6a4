// Pure parts of image import/export: reference naming, archive JSON documents, entry names.
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "client/archive.h"
#include "common/digest.h"
#include "common/reference.h"

namespace berth::client::archive {
namespace {

using OrderedJson = nlohmann::ordered_json;

// Go's encoding/json escapes <, > and & in strings; they only occur inside strings here.
std::string GoJson(const OrderedJson& j) {
  std::string in = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

OrderedJson PlatformObject(const images::Platform& p) {
  OrderedJson j = OrderedJson::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

OrderedJson DescriptorObject(const Descriptor& d) {
  OrderedJson j = OrderedJson::object();
  if (!d.media_type.empty()) j["mediaType"] = d.media_type;
  j["digest"] = d.digest;
  j["size"] = d.size;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.annotations.empty()) {
    OrderedJson a = OrderedJson::object();
    for (const auto& [k, v] : d.annotations) a[k] = v;  // std::map: sorted as Go's maps
    j["annotations"] = a;
  }
  if (d.platform) j["platform"] = PlatformObject(*d.platform);
  return j;
}

Result<nlohmann::json> Parse(std::string_view json, std::string_view what) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) return InvalidArgument(fmt::format("{}: malformed JSON", what));
  return j;
}

std::string StringField(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Descriptor> DescriptorFrom(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgument("descriptor is not a JSON object");
  Descriptor d;
  d.media_type = StringField(j, "mediaType");
  d.digest = StringField(j, "digest");
  if (auto it = j.find("size"); it != j.end()) {
    if (!it->is_number_integer()) return InvalidArgument("descriptor size is not an integer");
    d.size = it->get<int64_t>();
  }
  if (d.size < 0)
    return InvalidArgument(fmt::format("descriptor {} has a negative size", d.digest));
  auto digest = Digest::Parse(d.digest);
  if (!digest) return std::move(digest).error().Wrap("descriptor");
  if (auto it = j.find("urls"); it != j.end() && it->is_array()) {
    for (const auto& u : *it) {
      if (u.is_string()) d.urls.push_back(u.get<std::string>());
    }
  }
  if (auto it = j.find("annotations"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) return InvalidArgument(fmt::format("annotation {:?} is not a string", k));
      d.annotations[k] = v.get<std::string>();
    }
  }
  if (auto it = j.find("platform"); it != j.end() && it->is_object()) {
    d.platform = images::Platform{.os = StringField(*it, "os"),
                                  .architecture = StringField(*it, "architecture"),
                                  .variant = StringField(*it, "variant")};
  }
  return d;
}

std::vector<std::string> StringList(const nlohmann::json& j, const char* key, bool* ok) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) {
    *ok = false;
    return out;
  }
  for (const auto& v : *it) {
    if (!v.is_string()) {
      *ok = false;
      return out;
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

Result<std::string> NormalizeDockerRef(std::string_view ref) {
  auto named = reference::ParseNormalized(ref);
  if (!named) return std::move(named).error().Wrap(fmt::format("normalize image ref {:?}", ref));
  return named->String();
}

Result<std::string> FamiliarizeRef(std::string_view ref) {
  auto named = reference::ParseNormalized(ref);
  if (!named) return std::move(named).error().Wrap(fmt::format("failed to parse {:?}", ref));
  return named->FamiliarString();
}

std::string OciRefName(std::string_view name) {
  // containerd reference.Parse: url.Parse("dummy://" + name); host up to the first '/', a port
  // must be numeric; the object starts at the first ':' or '@' of the path.
  if (name.find("://") != std::string_view::npos) return std::string(name);
  size_t slash = name.find('/');
  std::string_view host = name.substr(0, slash);
  if (host.empty()) return std::string(name);
  if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    for (char c : host.substr(colon + 1)) {
      if (c < '0' || c > '9') return std::string(name);
    }
  }
  if (host.find_first_of("@ ") != std::string_view::npos) return std::string(name);
  if (slash == std::string_view::npos) return "";
  std::string_view path = name.substr(slash);
  size_t split = path.find_first_of(":@");
  if (split == std::string_view::npos) return "";
  std::string_view object = path.substr(split);
  if (object.front() == ':') object.remove_prefix(1);
  return std::string(object);
}

std::string AddRefPrefix(std::string_view prefix, std::string_view ref) {
  if (ref.find_first_of("/:@") != std::string_view::npos) return std::string(ref);
  return fmt::format("{}:{}", prefix, ref);
}

std::string FilterRefPrefix(std::string_view prefix, std::string_view ref) {
  if (ref.find_first_of("/:@") != std::string_view::npos) {
    if (!ref.starts_with(prefix)) return "";
    if (ref.size() > prefix.size()) {
      char c = ref[prefix.size()];
      if (c != '/' && c != ':' && c != '@') return "";
    }
    return std::string(ref);
  }
  return fmt::format("{}:{}", prefix, ref);
}

std::string DefaultImportPrefix() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &local);
  return std::string("import-") + buf;
}

Result<std::string> BlobPath(std::string_view digest) {
  BERTH_ASSIGN_OR_RETURN(Digest d, Digest::Parse(digest));
  return fmt::format("blobs/{}/{}", d.Algorithm(), d.Encoded());
}

Result<std::string> CleanEntryName(std::string_view name) {
  if (name.empty()) return InvalidArgument("archive entry with an empty name");
  if (name.front() == '/') {
    return InvalidArgument(fmt::format("archive entry {:?}: absolute path", name));
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    if (part == "..") {
      if (parts.empty()) {
        return InvalidArgument(fmt::format("archive entry {:?}: path escapes the archive", name));
      }
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = slash + 1;
  }
  if (parts.empty()) return std::string(".");
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

std::string DigestOfBlobPath(std::string_view path) {
  constexpr std::string_view kPrefix = "blobs/sha256/";
  if (!path.starts_with(kPrefix)) return "";
  std::string digest = "sha256:" + std::string(path.substr(kPrefix.size()));
  return Digest::Parse(digest) ? digest : "";
}

std::string_view DetectLayerMediaType(std::string_view head) {
  if (head.empty()) return kMediaTypeDockerLayer;
  // compression.DetectCompression: gzip (1f 8b 08) and zstd (28 b5 2f fd) are compressed; the
  // importer calls every compressed layer gzip.
  auto starts = [&](std::string_view magic) { return head.starts_with(magic); };
  if (starts(std::string_view("\x1f\x8b\x08", 3)) || starts("\x28\xb5\x2f\xfd")) {
    return kMediaTypeDockerLayerGzip;
  }
  return kMediaTypeDockerLayer;
}

Result<Descriptor> ParseDescriptor(std::string_view json) {
  BERTH_ASSIGN_OR_RETURN(auto j, Parse(json, "descriptor"));
  return DescriptorFrom(j);
}

std::string DescriptorJson(const Descriptor& d) { return GoJson(DescriptorObject(d)); }

Result<std::vector<Descriptor>> ParseIndex(std::string_view json) {
  BERTH_ASSIGN_OR_RETURN(auto j, Parse(json, "index"));
  if (!j.is_object()) return InvalidArgument("index: not a JSON object");
  std::vector<Descriptor> out;
  auto it = j.find("manifests");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return InvalidArgument("index: manifests is not an array");
  for (const auto& m : *it) {
    auto d = DescriptorFrom(m);
    if (!d) return std::move(d).error().Wrap("index: manifests");
    out.push_back(std::move(*d));
  }
  return out;
}

std::string IndexJson(const std::vector<Descriptor>& manifests) {
  OrderedJson j = OrderedJson::object();
  j["schemaVersion"] = 2;
  OrderedJson list = OrderedJson::array();
  for (const auto& m : manifests) list.push_back(DescriptorObject(m));
  j["manifests"] = list;
  return GoJson(j);
}

std::string OciLayoutJson() {
  OrderedJson j = OrderedJson::object();
  j["imageLayoutVersion"] = kOciLayoutVersion;
  return GoJson(j);
}

Result<std::string> ParseOciLayout(std::string_view json) {
  BERTH_ASSIGN_OR_RETURN(auto j, Parse(json, "oci-layout"));
  if (!j.is_object()) return InvalidArgument("oci-layout: not a JSON object");
  return StringField(j, "imageLayoutVersion");
}

Result<std::vector<DockerManifest>> ParseDockerManifests(std::string_view json) {
  BERTH_ASSIGN_OR_RETURN(auto j, Parse(json, "manifest.json"));
  if (!j.is_array()) return InvalidArgument("manifest.json: not a JSON array");
  std::vector<DockerManifest> out;
  for (const auto& m : j) {
    if (!m.is_object()) return InvalidArgument("manifest.json: entry is not an object");
    bool ok = true;
    DockerManifest dm;
    dm.config = StringField(m, "Config");
    dm.repo_tags = StringList(m, "RepoTags", &ok);
    dm.layers = StringList(m, "Layers", &ok);
    if (!ok) return InvalidArgument("manifest.json: RepoTags and Layers must be string lists");
    out.push_back(std::move(dm));
  }
  return out;
}

std::string DockerManifestsJson(const std::vector<DockerManifest>& manifests) {
  OrderedJson j = OrderedJson::array();
  for (const auto& m : manifests) {
    OrderedJson e = OrderedJson::object();
    e["Config"] = m.config;
    e["RepoTags"] = m.repo_tags.empty() ? OrderedJson(nullptr) : OrderedJson(m.repo_tags);
    e["Layers"] = m.layers.empty() ? OrderedJson(nullptr) : OrderedJson(m.layers);
    j.push_back(e);
  }
  return GoJson(j);
}

std::string DockerSchema2ManifestJson(const Descriptor& config,
                                      const std::vector<Descriptor>& layers) {
  OrderedJson j = OrderedJson::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = images::kMediaTypeDockerManifest;
  j["config"] = DescriptorObject(config);
  OrderedJson list = OrderedJson::array();
  for (const auto& l : layers) list.push_back(DescriptorObject(l));
  j["layers"] = layers.empty() ? OrderedJson(nullptr) : list;
  return GoJson(j);
}

StrictMatcher::StrictMatcher(std::vector<images::Platform> platforms) {
  for (auto& p : platforms) platforms_.push_back(images::NormalizePlatform(std::move(p)));
}

size_t StrictMatcher::Rank(const images::Platform& p) const {
  images::Platform n = images::NormalizePlatform(p);
  for (size_t i = 0; i < platforms_.size(); ++i) {
    if (platforms_[i] == n) return i;
  }
  return platforms_.size();
}

bool StrictMatcher::Match(const images::Platform& p) const { return Rank(p) < platforms_.size(); }

bool StrictMatcher::Less(const images::Platform& a, const images::Platform& b) const {
  return Rank(a) < Rank(b);
}

}  // namespace berth::client::archive
