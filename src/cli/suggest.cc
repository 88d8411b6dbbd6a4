#include "cli/suggest.h"

#include <algorithm>

#include <fmt/format.h>

#include "cli/run.h"
#include "common/reference.h"

namespace berth::cli {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

namespace {

// "domain/path" of a reference, normalized when it parses; "" otherwise.
std::string Repository(std::string_view ref) {
  auto parsed = reference::ParseNormalized(ref);
  if (!parsed) return "";
  return parsed->Locator();
}

}  // namespace

std::optional<std::string> Nearest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  if (word.empty() || candidates.empty()) return std::nullopt;
  auto usable = [&](const std::string& c) { return c != word; };

  // 1. The docker-normalized form of what was typed.
  if (auto normalized = reference::ParseNormalized(word)) {
    std::string full = normalized->String();
    for (const auto& c : candidates) {
      if (usable(c) && c == full) return c;
    }
    // 2. Same repository, another tag: the nearest tag.
    std::string repo = normalized->Locator();
    const std::string* best = nullptr;
    size_t best_distance = 0;
    for (const auto& c : candidates) {
      if (!usable(c) || Repository(c) != repo) continue;
      size_t d = EditDistance(full, c);
      if (best == nullptr || d < best_distance) {
        best = &c;
        best_distance = d;
      }
    }
    if (best != nullptr) return *best;
  }

  // 3. Typos, in what was typed or in its normalized form ("berth/busybx" is one letter from
  // "docker.io/berth/busybox:latest").
  size_t limit = std::max<size_t>(2, word.size() / 3);
  std::string full;
  if (auto normalized = reference::ParseNormalized(word)) full = normalized->String();
  const std::string* best = nullptr;
  size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    if (!usable(c)) continue;
    size_t d = EditDistance(word, c);
    if (!full.empty() && full != word) d = std::min(d, EditDistance(full, c));
    if (d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  if (best != nullptr) return *best;

  // 4. Prefixes.
  for (const auto& c : candidates) {
    if (!usable(c) || c.compare(0, word.size(), word) != 0) continue;
    if (best == nullptr || c.size() < best->size()) best = &c;
  }
  if (best != nullptr) return *best;
  return std::nullopt;
}

std::string CliMessage(const Error& error) {
  const std::string& what = error.What();
  if (error.Is(Errc::kNotFound) && !what.empty() && what.back() == '?') return what;
  return error.ToString();
}

namespace {

// The not-found error for `kind` "name": with a hint, the text ends with the question and
// CliMessage prints it as it is; without one it is the daemon's error (ctr's text).
Error NotFoundWithHint(std::string_view kind, std::string_view name, std::string_view ns,
                       const std::vector<std::string>& candidates, Error cause) {
  auto near = Nearest(name, candidates);
  if (!near) return cause;
  return NotFound(fmt::format("{} \"{}\" not found in namespace \"{}\"; did you mean \"{}\"?", kind,
                              name, ns, *near));
}

}  // namespace

Result<std::optional<std::string>> StoredImageName(const client::Session& session,
                                                   const std::string& ref) {
  berth::Client client = LibClient(session);
  auto exists = [&](const std::string& name) -> Result<bool> {
    auto image = client.GetImage(name);
    if (image) return true;
    if (image.error().Is(Errc::kNotFound)) return false;
    return std::move(image).error().Wrap(fmt::format("get image {:?}", name));
  };
  BERTH_ASSIGN_OR_RETURN(bool as_given, exists(ref));
  if (as_given) return ref;
  if (auto normalized = reference::ParseNormalized(ref)) {
    std::string full = normalized->String();
    if (full != ref) {
      BERTH_ASSIGN_OR_RETURN(bool found, exists(full));
      if (found) return full;
    }
  }
  return std::nullopt;
}

Result<std::string> ImageNameOrAsGiven(const client::Session& session, const std::string& ref) {
  BERTH_ASSIGN_OR_RETURN(auto stored, StoredImageName(session, ref));
  return stored.value_or(ref);
}

Error ImageNotFound(const client::Session& session, std::string_view name, Error cause) {
  if (!cause.Is(Errc::kNotFound)) return cause;
  std::vector<std::string> names;
  if (auto images = LibClient(session).ListImages()) {
    for (const auto& image : *images) names.push_back(image.Name());
  }
  return NotFoundWithHint("image", name, session.Namespace(), names, std::move(cause));
}

Error ContainerNotFound(const client::Session& session, std::string_view id, Error cause) {
  if (!cause.Is(Errc::kNotFound)) return cause;
  std::vector<std::string> ids;
  if (auto containers = LibClient(session).Containers()) {
    for (const auto& c : *containers) ids.push_back(c.Id());
  }
  return NotFoundWithHint("container", id, session.Namespace(), ids, std::move(cause));
}

}  // namespace berth::cli
