#pragma once
// The registry client (containerd's remotes/docker): resolve a reference to a descriptor, fetch
// blobs and manifests, push them. Speaks the OCI distribution API over libcurl (HTTP/1.1 and
// HTTP/2, TLS via OpenSSL), with anonymous, basic and bearer-token auth and containerd's
// hosts.toml configuration (see hosts.h). No protobuf, no gRPC: the client library drives it.
//
// Thread safety: one Resolver may be used from several threads at once (the pull pipeline
// fetches layers concurrently); each call uses its own connection handle, tokens are shared.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"
#include "images/image.h"
#include "remotes/hosts.h"

namespace berth::remotes {

using images::OciDescriptor;

struct Credentials {
  std::string username;
  std::string secret;  // password or identity token
};

struct ResolverOptions {
  // hosts.toml directory (ctr --hosts-dir, registry config_path); empty: built-in defaults only.
  std::string hosts_dir;
  bool plain_http = false;   // --plain-http: http for hosts without a hosts.toml
  bool skip_verify = false;  // -k: do not verify TLS certificates
  // -u user[:password]; also applies to bearer token requests. nullopt: anonymous.
  std::optional<Credentials> credentials;
  // Per-host credentials (host[:port] -> creds); overrides `credentials` for that host.
  std::function<std::optional<Credentials>(std::string_view host)> credentials_for;
  std::string user_agent = "berth/0.1";
};

// What a reference resolved to: the normalized name ("registry/repo:tag" or "...@digest") and
// the target descriptor (media type from Content-Type, digest from Docker-Content-Digest or the
// hash of the body, size).
struct Resolved {
  std::string name;
  OciDescriptor desc;
};

// Receives the bytes of a blob as they arrive. Returning an error aborts the transfer with it.
using ChunkSink = std::function<Status(std::string_view chunk)>;

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // Streams the blob or manifest `desc` (by digest) to `sink`, starting at byte `offset` (a
  // Range request, to resume an interrupted download; when a server ignores Range the first
  // `offset` bytes are skipped locally). Verifies size and, when offset is 0, the digest of the
  // whole stream before returning Ok (FailedPrecondition "digest mismatch" otherwise; the sink has
  // then seen bad bytes: the caller must not commit them). Tries the hosts with the pull capability
  // in order; a host that fails with a connection error or 5xx is skipped for the next one.
  // NotFound if no host has it.
  virtual Status Fetch(const OciDescriptor& desc, int64_t offset, const ChunkSink& sink) = 0;
};

class Pusher {
 public:
  virtual ~Pusher() = default;
  // HEAD the blob (or manifest by digest): true if the registry has it already.
  virtual Result<bool> Exists(const OciDescriptor& desc) = 0;
  // Tries a cross-repository mount of blob `desc` from `from_repo` (same registry): true if
  // the registry mounted it (201), false if it wants an upload.
  virtual Result<bool> Mount(const OciDescriptor& desc, std::string_view from_repo) = 0;
  // Uploads a blob: POST uploads/, then PUT <Location>?digest= with the whole body read from
  // `read` (called with (offset, max_len) -> bytes; empty at EOF). Large blobs may go in
  // PATCH chunks. AlreadyExists if the registry already had it (a HEAD is the caller's job).
  virtual Status PushBlob(const OciDescriptor& desc,
                          const std::function<Result<std::string>(int64_t, size_t)>& read) = 0;
  // PUT /v2/<repo>/manifests/<reference> with Content-Type = desc.media_type; `reference` is a
  // tag, or empty to put it by its digest (children of an index are pushed so, the root by tag).
  virtual Status PushManifest(const OciDescriptor& desc, std::string_view body,
                              std::string_view reference) = 0;
};

class Resolver {
 public:
  explicit Resolver(ResolverOptions options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // `ref` is a full reference (domain/path[:tag][@digest]; see common/reference.h). HEAD (GET
  // fallback) /v2/<repo>/manifests/<tag|digest> on the resolve-capable hosts in order.
  // NotFound "<ref>: not found" if no host has it; Unauthenticated/PermissionDenied as the
  // registry says; Unavailable when no host answers.
  Result<Resolved> Resolve(std::string_view ref);
  // A fetcher for the repository of `ref`. With `verify_digests` false its Fetch checks sizes but
  // does not hash: for a caller whose sink verifies anyway (the pull pipeline's layers: berthd's
  // content store checks size and digest on commit, as containerd's does), so that the bytes
  // are hashed once, not twice.
  Result<std::unique_ptr<Fetcher>> NewFetcher(std::string_view ref, bool verify_digests = true);
  // A pusher for the repository of `ref` (hosts with the push capability; the tag of `ref` is
  // where PushManifest of the root goes).
  Result<std::unique_ptr<Pusher>> NewPusher(std::string_view ref);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::remotes
