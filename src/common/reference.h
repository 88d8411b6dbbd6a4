#pragma once
// Image references: containerd's reference package (strict "domain/path[:tag][@digest]") and
// docker/distribution's normalisation (reference.ParseDockerRef, what ctr and nerdctl users
// type).
//
// Grammar (docker/distribution reference/regexp.go):
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component ( "/" path-component )*   (at most 255 chars)
//   domain     := domain-component ( "." domain-component )* [ ":" port-number ]
//   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//   path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
//   separator  := "." | "_" | "__" | "-"+
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := algorithm ":" hex      algorithm := [A-Za-z][A-Za-z0-9]*
//   ([-_+.][A-Za-z][A-Za-z0-9]*)*
//                                        hex := [0-9a-fA-F]{32,}
//
// Parse (strict, containerd): the first "/"-separated component is always the domain, so a
// reference needs a domain and at least one path component; nothing is filled in.
//
// ParseNormalized (docker's ParseDockerRef):
//   1. A 64-hex-character string alone is refused (it would be an image ID).
//   2. The first component is a domain only if it contains "." or ":" or is "localhost";
//      otherwise the domain is "docker.io" and the whole name is the path.
//   3. Domain "index.docker.io" becomes "docker.io".
//   4. On docker.io, a one-component path gets "library/" ("busybox" -> "library/busybox").
//   5. The path (not the domain) must be lowercase: uppercase is an error.
//   6. No tag and no digest: tag "latest". Tag and digest: the tag is dropped (digest wins).
// Examples: "busybox" -> "docker.io/library/busybox:latest"; "user/app" ->
// "docker.io/user/app:latest"; "localhost:5000/x" -> "localhost:5000/x:latest";
// "docker.io/busybox@sha256:..." -> "docker.io/library/busybox@sha256:...".
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth::reference {

class Reference {
 public:
  Reference() = default;

  const std::string& Domain() const { return domain_; }  // "docker.io", "127.0.0.1:5000"
  const std::string& Path() const { return path_; }      // repository path: "library/busybox"
  const std::string& Tag() const { return tag_; }        // "" if none
  const std::string& Digest() const { return digest_; }  // "sha256:..." or ""
  // "domain/path"
  std::string Locator() const { return domain_ + "/" + path_; }
  // containerd's object: the tag, "@digest", or "tag@digest"; "" if neither.
  std::string Object() const;
  // "domain/path[:tag][@digest]"
  std::string String() const;
  // docker's short form: "docker.io/library/busybox:latest" -> "busybox:latest",
  // "docker.io/user/app" -> "user/app"; other domains are kept.
  std::string FamiliarString() const;

 private:
  friend Result<Reference> Parse(std::string_view ref);
  friend Result<Reference> ParseNormalized(std::string_view ref);
  std::string domain_;
  std::string path_;
  std::string tag_;
  std::string digest_;
};

// Strict parse (see above). InvalidArgument naming the input on any grammar violation.
Result<Reference> Parse(std::string_view ref);
// Docker normalisation (see above). InvalidArgument naming the input.
Result<Reference> ParseNormalized(std::string_view ref);

}  // namespace berth::reference
