#include "common/reference.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace berth::reference {
namespace {

constexpr size_t kNameTotalLengthMax = 255;
constexpr std::string_view kDefaultDomain = "docker.io";
constexpr std::string_view kLegacyDefaultDomain = "index.docker.io";
constexpr std::string_view kOfficialRepoPrefix = "library/";

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsWord(char c) { return IsAlnum(c) || c == '_'; }

Error Invalid(std::string_view ref, std::string_view why) {
  return InvalidArgument(fmt::format("invalid reference format: \"{}\": {}", ref, why));
}

// [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool ValidDomainComponent(std::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (char ch : c) {
    if (!IsAlnum(ch) && ch != '-') return false;
  }
  return true;
}

bool ValidDomain(std::string_view d) {
  if (auto colon = d.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char ch : port) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
    }
    d = d.substr(0, colon);
  }
  size_t start = 0;
  while (true) {
    size_t dot = d.find('.', start);
    if (!ValidDomainComponent(d.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
bool ValidPathComponent(std::string_view c) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t s = i;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    return i > s;
  };
  if (!alnum_run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

bool ValidPath(std::string_view p) {
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    if (!ValidPathComponent(p.substr(start, slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128 || !IsWord(t.front())) return false;
  for (char ch : t) {
    if (!IsWord(ch) && ch != '.' && ch != '-') return false;
  }
  return true;
}

bool ValidDigest(std::string_view d) {
  size_t colon = d.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view alg = d.substr(0, colon);
  std::string_view hex = d.substr(colon + 1);
  if (hex.size() < 32) return false;
  for (char ch : hex) {
    if (!IsHex(ch)) return false;
  }
  // [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
  bool need_letter = true;
  for (char ch : alg) {
    if (need_letter) {
      if (!std::isalpha(static_cast<unsigned char>(ch))) return false;
      need_letter = false;
    } else if (ch == '-' || ch == '_' || ch == '+' || ch == '.') {
      need_letter = true;
    } else if (!IsAlnum(ch)) {
      return false;
    }
  }
  return !need_letter;
}

struct Split {
  std::string_view name;
  std::string_view tag;
  std::string_view digest;
};

// Splits "name[:tag][@digest]" and validates tag and digest.
Result<Split> SplitObject(std::string_view ref) {
  Split s;
  s.name = ref;
  if (auto at = ref.find('@'); at != std::string_view::npos) {
    s.digest = ref.substr(at + 1);
    s.name = ref.substr(0, at);
    if (!ValidDigest(s.digest)) return Invalid(ref, "invalid digest");
  }
  // A tag's ":" comes after the last "/" (a ":" before it is a port).
  size_t last_slash = s.name.rfind('/');
  size_t colon = s.name.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    s.tag = s.name.substr(colon + 1);
    s.name = s.name.substr(0, colon);
    if (!ValidTag(s.tag)) return Invalid(ref, "invalid tag");
  }
  if (s.name.empty()) return Invalid(ref, "empty name");
  if (s.name.size() > kNameTotalLengthMax) {
    return Invalid(ref,
                   fmt::format("repository name longer than {} characters", kNameTotalLengthMax));
  }
  return s;
}

}  // namespace

std::string Reference::Object() const {
  std::string out = tag_;
  if (!digest_.empty()) out += "@" + digest_;
  return out;
}

std::string Reference::String() const {
  std::string out = Locator();
  if (!tag_.empty()) out += ":" + tag_;
  if (!digest_.empty()) out += "@" + digest_;
  return out;
}

std::string Reference::FamiliarString() const {
  std::string out;
  if (domain_ == kDefaultDomain) {
    std::string_view p = path_;
    if (p.starts_with(kOfficialRepoPrefix) &&
        p.substr(kOfficialRepoPrefix.size()).find('/') == std::string_view::npos) {
      p.remove_prefix(kOfficialRepoPrefix.size());
    }
    out = p;
  } else {
    out = Locator();
  }
  if (!tag_.empty()) out += ":" + tag_;
  if (!digest_.empty()) out += "@" + digest_;
  return out;
}

Result<Reference> Parse(std::string_view ref) {
  if (ref.empty()) return Invalid(ref, "empty reference");
  if (ref.find("://") != std::string_view::npos) return Invalid(ref, "contains a URL scheme");
  BERTH_ASSIGN_OR_RETURN(Split s, SplitObject(ref));
  size_t slash = s.name.find('/');
  if (slash == std::string_view::npos) return Invalid(ref, "no domain (want domain/path)");
  std::string_view domain = s.name.substr(0, slash);
  std::string_view path = s.name.substr(slash + 1);
  if (!ValidDomain(domain)) return Invalid(ref, fmt::format("invalid domain \"{}\"", domain));
  if (!ValidPath(path)) return Invalid(ref, fmt::format("invalid repository path \"{}\"", path));
  Reference r;
  r.domain_ = domain;
  r.path_ = path;
  r.tag_ = s.tag;
  r.digest_ = s.digest;
  return r;
}

Result<Reference> ParseNormalized(std::string_view ref) {
  if (ref.empty()) return Invalid(ref, "empty reference");
  if (ref.size() == 64 && std::all_of(ref.begin(), ref.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return Invalid(ref, "cannot specify 64-byte hexadecimal strings");
  }
  if (ref.find("://") != std::string_view::npos) return Invalid(ref, "contains a URL scheme");
  BERTH_ASSIGN_OR_RETURN(Split s, SplitObject(ref));
  std::string domain;
  std::string path;
  size_t slash = s.name.find('/');
  std::string_view first = s.name.substr(0, slash);
  if (slash == std::string_view::npos ||
      (first.find_first_of(".:") == std::string_view::npos && first != "localhost")) {
    domain = kDefaultDomain;
    path = s.name;
  } else {
    domain = first;
    path = s.name.substr(slash + 1);
  }
  if (domain == kLegacyDefaultDomain) domain = kDefaultDomain;
  if (domain == kDefaultDomain && path.find('/') == std::string::npos) {
    path = std::string(kOfficialRepoPrefix) + path;
  }
  if (std::any_of(path.begin(), path.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return Invalid(ref, "repository name must be lowercase");
  }
  if (!ValidDomain(domain)) return Invalid(ref, fmt::format("invalid domain \"{}\"", domain));
  if (!ValidPath(path)) return Invalid(ref, fmt::format("invalid repository path \"{}\"", path));
  if (domain.size() + 1 + path.size() > kNameTotalLengthMax) {
    return Invalid(ref,
                   fmt::format("repository name longer than {} characters", kNameTotalLengthMax));
  }
  Reference r;
  r.domain_ = std::move(domain);
  r.path_ = std::move(path);
  r.digest_ = s.digest;
  if (r.digest_.empty()) r.tag_ = s.tag.empty() ? std::string("latest") : std::string(s.tag);
  return r;
}

}  // namespace berth::reference
