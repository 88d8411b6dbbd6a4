#pragma once
// "Did you mean" hints for names the user typed: unknown images, containers and subcommands.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/session.h"
#include "common/errdefs.h"

namespace berth::cli {

// Levenshtein distance (insert, delete, substitute; each costs 1).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if one is close enough to be what was meant:
//  1. `word` normalized as docker does ("busybox" -> "docker.io/library/busybox:latest");
//  2. the same repository with another tag or digest (the only one, else the nearest tag);
//  3. the smallest edit distance of `word` or of its normalized form, at most max(2, |word|/3)
//     (ties: the first candidate);
//  4. a candidate that starts with `word` (the shortest).
// Never returns `word` itself.
std::optional<std::string> Nearest(std::string_view word,
                                   const std::vector<std::string>& candidates);

// The name of the stored image `ref` means, so every command takes docker's short names: `ref`
// itself if the namespace has an image of that name, else its normalized form if that exists
// ("busybox" -> "docker.io/library/busybox:latest"); nullopt when neither does.
Result<std::optional<std::string>> StoredImageName(const client::Session& session,
                                                   const std::string& ref);
// As StoredImageName, `ref` unchanged when no image matches (the command's own not-found path).
Result<std::string> ImageNameOrAsGiven(const client::Session& session, const std::string& ref);

// NotFound for an image the namespace lacks: `image "X" not found in namespace "NS"; did you
// mean "Y"?` when an image of the namespace is close (Nearest); otherwise `cause` unchanged (the
// daemon's text, as ctr prints it).
Error ImageNotFound(const client::Session& session, std::string_view name, Error cause);
// The same for containers: `container "X" not found in namespace "NS"; did you mean "Y"?`.
Error ContainerNotFound(const client::Session& session, std::string_view id, Error cause);

// How the CLI prints an error: ToString(), except that a NotFound whose text ends with a
// "did you mean" question is printed as it is (no ": not found" after the question).
std::string CliMessage(const Error& error);

}  // namespace berth::cli
