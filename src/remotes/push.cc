#include <fmt/format.h>

#include "remotes/auth.h"
#include "remotes/push_impl.h"

namespace berth::remotes {
namespace {

std::string WithQuery(const std::string& url, std::string_view kv) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + std::string(kv);
}

class PusherImpl : public Pusher {
 public:
  PusherImpl(std::shared_ptr<Session> s, Endpoint ep, std::string repo)
      : session_(std::move(s)), ep_(std::move(ep)), repo_(std::move(repo)) {}

  Result<bool> Exists(const OciDescriptor& desc) override {
    std::string kind = IsManifestType(desc.media_type) ? "manifests/" : "blobs/";
    HttpRequest req{.method = "HEAD", .url = ep_.Url(repo_, kind + desc.digest)};
    if (kind == "manifests/") req.headers.emplace_back("Accept", kManifestAccept);
    BERTH_ASSIGN_OR_RETURN(auto resp,
                           session_->Do(ep_, std::move(req), Scopes(), nullptr, kMaxErrorBody));
    if (resp.status == 200) return true;
    if (resp.status == 404) return false;
    return HttpError("HEAD", resp);
  }

  Result<bool> Mount(const OciDescriptor& desc, std::string_view from_repo) override {
    std::string url = ep_.Url(repo_, "blobs/uploads/") + "?mount=" + QueryEscape(desc.digest) +
                      "&from=" + QueryEscape(from_repo);
    auto scopes = Scopes();
    scopes.push_back(fmt::format("repository:{}:pull", from_repo));
    BERTH_ASSIGN_OR_RETURN(auto resp, session_->Do(ep_, HttpRequest{.method = "POST", .url = url},
                                                   scopes, nullptr, kMaxErrorBody));
    if (resp.status == 201) return true;
    if (resp.status == 202) {
      // The registry opened an upload session instead: cancel it (best effort; registries
      // also purge abandoned uploads).
      std::string location = resp.Header("location");
      if (!location.empty()) {
        HttpRequest del{.method = "DELETE", .url = ResolveUrl(resp.url, location)};
        (void)session_->Do(ep_, std::move(del), Scopes(), nullptr, kMaxErrorBody);
      }
      return false;
    }
    return HttpError("POST", resp).Wrap(fmt::format("mount {} from {}", desc.digest, from_repo));
  }

  Status PushBlob(const OciDescriptor& desc,
                  const std::function<Result<std::string>(int64_t, size_t)>& read) override {
    std::string what = fmt::format("push blob {} to {}/{}", desc.digest, ep_.host.host, repo_);
    HttpRequest post{.method = "POST", .url = ep_.Url(repo_, "blobs/uploads/")};
    BERTH_ASSIGN_OR_RETURN(auto started,
                           session_->Do(ep_, std::move(post), Scopes(), nullptr, kMaxErrorBody));
    if (started.status == 201) return AlreadyExists(what);
    if (started.status != 202) return HttpError("POST", started).Wrap(what);
    std::string location = started.Header("location");
    if (location.empty()) {
      return Unknown(fmt::format("{}: POST {}: 202 without a Location header", what, started.url));
    }
    HttpRequest put{
        .method = "PUT",
        .url = WithQuery(ResolveUrl(started.url, location), "digest=" + QueryEscape(desc.digest)),
        .read = read,
        .body_size = desc.size};
    put.headers.emplace_back("Content-Type", "application/octet-stream");
    BERTH_ASSIGN_OR_RETURN(auto done,
                           session_->Do(ep_, std::move(put), Scopes(), nullptr, kMaxErrorBody));
    if (done.status != 201 && done.status != 204) return HttpError("PUT", done).Wrap(what);
    return Ok();
  }

  Status PushManifest(const OciDescriptor& desc, std::string_view body,
                      std::string_view reference) override {
    std::string ref = reference.empty() ? desc.digest : std::string(reference);
    std::string what =
        fmt::format("push manifest {} to {}/{}:{}", desc.digest, ep_.host.host, repo_, ref);
    if (static_cast<int64_t>(body.size()) != desc.size) {
      return InvalidArgument(
          fmt::format("{}: body is {} bytes, descriptor says {}", what, body.size(), desc.size));
    }
    std::string data(body);
    HttpRequest put{.method = "PUT",
                    .url = ep_.Url(repo_, "manifests/" + ref),
                    .read = [data](int64_t off, size_t n) -> Result<std::string> {
                      return data.substr(static_cast<size_t>(off), n);
                    },
                    .body_size = static_cast<int64_t>(data.size())};
    put.headers.emplace_back("Content-Type", desc.media_type);
    BERTH_ASSIGN_OR_RETURN(auto resp,
                           session_->Do(ep_, std::move(put), Scopes(), nullptr, kMaxErrorBody));
    if (resp.status != 201 && resp.status != 200) return HttpError("PUT", resp).Wrap(what);
    std::string got = resp.Header("docker-content-digest");
    if (!got.empty() && got != desc.digest) {
      return FailedPrecondition(
          fmt::format("{}: registry stored it as {} (digest mismatch)", what, got));
    }
    return Ok();
  }

 private:
  std::vector<std::string> Scopes() const {
    return {fmt::format("repository:{}:pull,push", repo_)};
  }

  std::shared_ptr<Session> session_;
  Endpoint ep_;
  std::string repo_;
};

}  // namespace

Result<std::unique_ptr<Pusher>> MakePusher(std::shared_ptr<Session> session,
                                           std::vector<Endpoint> eps, std::string repo) {
  for (auto& ep : eps) {
    if (ep.host.Can(kCapPush)) {
      return std::unique_ptr<Pusher>(
          std::make_unique<PusherImpl>(std::move(session), std::move(ep), std::move(repo)));
    }
  }
  return NotFound(fmt::format("push to {}: no host with the push capability", repo));
}

}  // namespace berth::remotes
