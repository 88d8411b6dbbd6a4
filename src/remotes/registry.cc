#include "remotes/registry.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/reference.h"
#include "remotes/push_impl.h"
#include "remotes/session.h"

namespace berth::remotes {

struct Resolver::Impl {
  // Shared with the fetchers and pushers, so they may outlive the Resolver.
  std::shared_ptr<Session> session;
  explicit Impl(ResolverOptions o) : session(std::make_shared<Session>(std::move(o))) {}
};

namespace {

int64_t ParseInt(std::string_view s) {
  int64_t v = -1;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : -1;
}

// Worth trying the next host after this error?
bool NextHostOn(const Error& e) { return e.Is(Errc::kUnavailable) || e.Is(Errc::kNotFound); }

std::string MediaTypeOf(const HttpResponse& resp, std::string_view body) {
  std::string ct = resp.Header("content-type");
  if (auto semi = ct.find(';'); semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (!ct.empty() && ct != "application/octet-stream" && ct != "text/plain") return ct;
  if (!body.empty()) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      std::string mt = j.value("mediaType", "");
      if (!mt.empty()) return mt;
      if (j.contains("manifests")) return "application/vnd.oci.image.index.v1+json";
      if (j.contains("layers")) return "application/vnd.oci.image.manifest.v1+json";
    }
  }
  return ct;
}

class FetcherImpl : public Fetcher {
 public:
  FetcherImpl(std::shared_ptr<Session> s, std::vector<Endpoint> eps, std::string repo, bool verify)
      : session_(std::move(s)), eps_(std::move(eps)), repo_(std::move(repo)), verify_(verify) {}

  Status Fetch(const OciDescriptor& desc, int64_t offset, const ChunkSink& sink) override {
    auto want = Digest::Parse(desc.digest);
    if (!want) return std::move(want).error().Wrap("fetch");
    if (offset < 0 || (desc.size > 0 && offset > desc.size)) {
      return OutOfRange(
          fmt::format("fetch {}: offset {} outside 0..{}", desc.digest, offset, desc.size));
    }
    if (IsManifestType(desc.media_type) && desc.size > static_cast<int64_t>(kMaxManifestSize)) {
      return Error(Errc::kResourceExhausted,
                   fmt::format("fetch {}: manifest size {} exceeds the limit of {} bytes",
                               desc.digest, desc.size, kMaxManifestSize));
    }
    if (offset > 0 && offset == desc.size) return Ok();
    // Manifests are addressed under manifests/, with blobs/ as the fallback (as containerd);
    // everything else only under blobs/.
    std::vector<std::string> kinds;
    if (IsManifestType(desc.media_type)) kinds.push_back("manifests");
    kinds.push_back("blobs");
    std::optional<Error> last;
    bool any = false;
    for (const auto& ep : eps_) {
      if (!ep.host.Can(kCapPull)) continue;
      any = true;
      for (const auto& kind : kinds) {
        bool delivered = false;
        Status st = FetchFrom(ep, kind, desc, *want, offset, sink, delivered);
        if (st) return st;
        // Bytes already reached the sink: the caller must resume (with an offset).
        if (!NextHostOn(st.error()) || delivered) return std::move(st).error();
        if (!last || last->Is(Errc::kNotFound)) last = std::move(st).error();
      }
    }
    if (!any) {
      return NotFound(fmt::format("fetch {}: no host with the pull capability", desc.digest));
    }
    if (last->Is(Errc::kNotFound)) {
      return NotFound(fmt::format("{}/{}@{}", eps_.back().host.host, repo_, desc.digest));
    }
    return std::move(*last).Wrap(fmt::format("fetch {}", desc.digest));
  }

 private:
  Status FetchFrom(const Endpoint& ep, const std::string& kind, const OciDescriptor& desc,
                   const Digest& want, int64_t offset, const ChunkSink& sink, bool& delivered) {
    HttpRequest req{.method = "GET", .url = ep.Url(repo_, kind + "/" + desc.digest)};
    if (kind == "manifests") {
      req.headers.emplace_back("Accept", desc.media_type.empty() ? std::string(kManifestAccept)
                                                                 : desc.media_type + ", */*");
    }
    if (offset > 0) req.headers.emplace_back("Range", fmt::format("bytes={}-", offset));
    std::string url = req.url;
    Sha256 hash;
    bool whole = false;  // the body starts at byte 0 (no Range sent, or it was ignored)
    int64_t pos = -1;    // absolute position of the next body byte
    BodySink body = [&](long status, std::string_view chunk) -> Status {
      if (pos < 0) {
        whole = status != 206;
        pos = whole ? 0 : offset;
      }
      if (whole && verify_) hash.Update(chunk);
      int64_t end = pos + static_cast<int64_t>(chunk.size());
      if (desc.size > 0 && end > desc.size) {
        return FailedPrecondition(
            fmt::format("GET {}: more than the expected {} bytes", url, desc.size));
      }
      if (kind == "manifests" && end > static_cast<int64_t>(kMaxManifestSize)) {
        return Error(Errc::kResourceExhausted,
                     fmt::format("GET {}: manifest larger than {} bytes", url, kMaxManifestSize));
      }
      if (pos < offset) {  // a server that ignored Range: drop what the caller has
        size_t drop = static_cast<size_t>(std::min<int64_t>(offset - pos, chunk.size()));
        pos += static_cast<int64_t>(drop);
        chunk.remove_prefix(drop);
        if (chunk.empty()) return Ok();
      }
      pos += static_cast<int64_t>(chunk.size());
      delivered = true;
      return sink(chunk);
    };
    auto resp = session_->Do(ep, std::move(req), {fmt::format("repository:{}:pull", repo_)}, &body,
                             kMaxErrorBody);
    if (!resp) return std::move(resp).error();
    if (resp->status < 200 || resp->status >= 300) return HttpError("GET", *resp);
    if (pos < 0) {  // empty body
      whole = resp->status != 206;
      pos = whole ? 0 : offset;
    }
    if (desc.size > 0 && pos != desc.size) {
      return Unavailable(
          fmt::format("GET {}: short read: {} of {} bytes", resp->url, pos, desc.size));
    }
    if (whole && verify_) {
      Digest got = hash.Current();
      if (got != want) {
        return FailedPrecondition(fmt::format("GET {}: digest mismatch: got {}, want {}", resp->url,
                                              got.String(), want.String()));
      }
    }
    return Ok();
  }

  std::shared_ptr<Session> session_;
  std::vector<Endpoint> eps_;
  std::string repo_;
  bool verify_;
};

Result<reference::Reference> ParseRef(std::string_view ref) {
  return reference::ParseNormalized(ref);
}

}  // namespace

Resolver::Resolver(ResolverOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Resolver::~Resolver() = default;

Result<Resolved> Resolver::Resolve(std::string_view ref_text) {
  BERTH_ASSIGN_OR_RETURN(auto ref, ParseRef(ref_text));
  BERTH_ASSIGN_OR_RETURN(auto eps, impl_->session->Hosts(ref.Domain()));
  std::string object = ref.Digest().empty() ? ref.Tag() : ref.Digest();
  std::vector<std::string> scopes = {fmt::format("repository:{}:pull", ref.Path())};
  std::optional<Error> last;
  bool any = false;
  for (const auto& ep : eps) {
    if (!ep.host.Can(kCapResolve)) continue;
    any = true;
    // HEAD first; GET when HEAD is refused or leaves the digest or size unknown.
    for (const char* method : {"HEAD", "GET"}) {
      HttpRequest req{.method = method, .url = ep.Url(ref.Path(), "manifests/" + object)};
      req.headers.emplace_back("Accept", kManifestAccept);
      auto resp = impl_->session->Do(ep, std::move(req), scopes, nullptr, kMaxManifestSize);
      if (!resp) {
        if (resp.error().Is(Errc::kResourceExhausted)) {
          return std::move(resp).error().Wrap(fmt::format("resolve {}", ref.String()));
        }
        last = std::move(resp).error();
        break;  // connection error: next host
      }
      if (resp->status == 404) {
        if (!last || last->Is(Errc::kNotFound)) last = HttpError(method, *resp);
        break;
      }
      if (resp->status >= 500 || resp->status == 429) {
        last = HttpError(method, *resp);
        break;
      }
      if (resp->status < 200 || resp->status >= 300) {
        if (std::string_view(method) == "HEAD" && resp->status == 405) continue;
        return HttpError(method, *resp).Wrap(fmt::format("resolve {}", ref.String()));
      }
      std::string dgst = resp->Header("docker-content-digest");
      int64_t size = ParseInt(resp->Header("content-length"));
      bool head = std::string_view(method) == "HEAD";
      // Need the body when HEAD leaves the digest or the size unknown (no manifest is empty: a
      // zero Content-Length is a proxy that dropped the header).
      if (head && (dgst.empty() || size <= 0)) continue;
      if (!ref.Digest().empty()) dgst = ref.Digest();
      if (!head) {
        size = static_cast<int64_t>(resp->body.size());
        Digest got = Digest::FromBytes(resp->body);
        if (dgst.empty()) {
          dgst = got.String();
        } else if (dgst != got.String() && Digest::Parse(dgst)) {
          return FailedPrecondition(
              fmt::format("resolve {}: GET {}: digest mismatch: got {}, want {}", ref.String(),
                          resp->url, got.String(), dgst));
        }
      }
      if (auto valid = Digest::Parse(dgst); !valid) {
        return std::move(valid).error().Wrap(fmt::format("resolve {}: {} {}: Docker-Content-Digest",
                                                         ref.String(), method, resp->url));
      }
      Resolved out;
      out.name = ref.String();
      out.desc.digest = dgst;
      out.desc.size = size;
      out.desc.media_type = MediaTypeOf(*resp, resp->body);
      return out;
    }
  }
  if (!any) return NotFound(fmt::format("{}: no host with the resolve capability", ref.String()));
  if (last && last->Is(Errc::kNotFound)) {
    return NotFound(ref.String());  // containerd: "<ref>: not found"
  }
  if (!last) return NotFound(ref.String());
  return std::move(*last).Wrap(fmt::format("resolve {}", ref.String()));
}

Result<std::unique_ptr<Fetcher>> Resolver::NewFetcher(std::string_view ref_text,
                                                      bool verify_digests) {
  BERTH_ASSIGN_OR_RETURN(auto ref, ParseRef(ref_text));
  BERTH_ASSIGN_OR_RETURN(auto eps, impl_->session->Hosts(ref.Domain()));
  return std::unique_ptr<Fetcher>(
      std::make_unique<FetcherImpl>(impl_->session, std::move(eps), ref.Path(), verify_digests));
}

Result<std::unique_ptr<Pusher>> Resolver::NewPusher(std::string_view ref_text) {
  BERTH_ASSIGN_OR_RETURN(auto ref, ParseRef(ref_text));
  BERTH_ASSIGN_OR_RETURN(auto eps, impl_->session->Hosts(ref.Domain()));
  return MakePusher(impl_->session, std::move(eps), ref.Path());
}

}  // namespace berth::remotes
