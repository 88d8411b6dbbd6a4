#include "remotes/session.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace berth::remotes {
namespace {

std::string ScopesKey(const std::vector<std::string>& scopes) {
  std::string key;
  for (const auto& s : scopes) key += s + " ";
  return key;
}

std::string_view Reason(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 416:
      return "Requested Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

}  // namespace

const char* const kManifestAccept =
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, */*";

bool IsManifestType(std::string_view mt) {
  return mt == "application/vnd.docker.distribution.manifest.v2+json" ||
         mt == "application/vnd.docker.distribution.manifest.list.v2+json" ||
         mt == "application/vnd.docker.distribution.manifest.v1+prettyjws" ||
         mt == "application/vnd.docker.distribution.manifest.v1+json" ||
         mt == "application/vnd.oci.image.manifest.v1+json" ||
         mt == "application/vnd.oci.image.index.v1+json";
}

Error HttpError(std::string_view method, const HttpResponse& resp) {
  std::string what = fmt::format("{} {}: {}", method, resp.url, resp.status);
  if (auto r = Reason(resp.status); !r.empty()) what += fmt::format(" {}", r);
  // Registry errors: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"...","detail":...}]}
  nlohmann::json j = nlohmann::json::parse(resp.body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      std::string code = e.value("code", "");
      std::string msg = e.value("message", "");
      what += fmt::format(": {}", code);
      if (!msg.empty()) what += fmt::format(": {}", msg);
    }
  }
  Errc c = Errc::kUnknown;
  if (resp.status == 404) {
    c = Errc::kNotFound;
  } else if (resp.status == 401 || resp.status == 403) {
    c = Errc::kPermissionDenied;
  } else if (resp.status == 400 || resp.status == 405 || resp.status == 413) {
    c = Errc::kInvalidArgument;
  } else if (resp.status == 416) {
    c = Errc::kOutOfRange;
  } else if (resp.status == 429 || resp.status >= 500) {
    c = Errc::kUnavailable;
  } else if (resp.status == 409) {
    c = Errc::kAlreadyExists;
  }
  return Error(c, std::move(what));
}

Result<std::vector<Endpoint>> Session::Hosts(std::string_view domain) {
  {
    std::lock_guard lock(mu_);
    if (auto it = hosts_.find(domain); it != hosts_.end()) return it->second;
  }
  HostOptions ho{.hosts_dir = options_.hosts_dir,
                 .default_scheme = options_.plain_http ? "http" : ""};
  auto hosts = ConfigureHosts(ho, domain);
  if (!hosts) return std::move(hosts).error().Wrap(fmt::format("configure hosts for {}", domain));
  std::vector<Endpoint> eps;
  for (auto& h : *hosts) {
    bool skip = h.skip_verify.value_or(options_.skip_verify);
    auto tls = MakeTlsConfig(h.ca_files, h.client_pairs, skip);
    if (!tls) return std::move(tls).error().Wrap(fmt::format("host {}", h.host));
    eps.push_back(Endpoint{.host = std::move(h), .tls = std::move(*tls)});
  }
  std::lock_guard lock(mu_);
  hosts_.emplace(std::string(domain), eps);
  return eps;
}

std::optional<Credentials> Session::CredsFor(std::string_view host) const {
  if (options_.credentials_for) {
    if (auto c = options_.credentials_for(host)) return c;
  }
  return options_.credentials;
}

Result<std::string> Session::Authorization(const Endpoint& ep,
                                           const std::vector<std::string>& scopes, bool refresh) {
  std::string key = ScopesKey(scopes);
  Challenge ch;
  {
    std::lock_guard lock(mu_);
    auto it = auth_.find(ep.host.host);
    if (it == auth_.end() || it->second.challenge.scheme.empty()) return std::string();
    ch = it->second.challenge;
    if (ch.scheme == "bearer" && !refresh) {
      if (auto t = it->second.tokens.find(key); t != it->second.tokens.end()) {
        return "Bearer " + t->second;
      }
    }
  }
  // The credentials callback runs outside the lock (it is the caller's code).
  auto creds = CredsFor(ep.host.host);
  if (ch.scheme == "basic") {
    if (!creds) return std::string();
    return BasicAuthorization(creds->username, creds->secret);
  }
  if (ch.scheme != "bearer") return std::string();
  // Token request: GET realm?service=&scope=..., with basic credentials if configured.
  std::string realm = ch.params["realm"];
  if (realm.empty()) {
    return InvalidArgument(fmt::format("{}: bearer challenge without realm", ep.host.host));
  }
  std::vector<std::string> all = scopes;
  if (auto s = ch.params.find("scope"); s != ch.params.end() && !s->second.empty() &&
                                        std::find(all.begin(), all.end(), s->second) == all.end()) {
    all.push_back(s->second);
  }
  HttpRequest tr{.method = "GET",
                 .url = TokenUrl(realm, ch.params["service"], all),
                 .headers = {},
                 .tls = ep.tls,
                 .user_agent = options_.user_agent};
  if (creds)
    tr.headers.emplace_back("Authorization", BasicAuthorization(creds->username, creds->secret));
  auto resp = Perform(tr, nullptr, kMaxErrorBody);
  if (!resp) return std::move(resp).error().Wrap("fetch token");
  if (resp->status != 200) return HttpError("GET", *resp).Wrap("fetch token");
  auto token = ParseTokenResponse(resp->body);
  if (!token) return std::move(token).error().Wrap(fmt::format("fetch token from {}", realm));
  std::lock_guard lock(mu_);
  auth_[ep.host.host].tokens[key] = *token;
  return "Bearer " + *token;
}

Result<HttpResponse> Session::Do(const Endpoint& ep, HttpRequest req,
                                 const std::vector<std::string>& scopes, const BodySink* sink,
                                 size_t max_body) {
  req.tls = ep.tls;
  req.user_agent = options_.user_agent;
  for (const auto& h : ep.host.headers) req.headers.push_back(h);
  const size_t base_headers = req.headers.size();
  bool refresh = false;
  for (int attempt = 0;; ++attempt) {
    req.headers.resize(base_headers);
    BERTH_ASSIGN_OR_RETURN(std::string authz, Authorization(ep, scopes, refresh));
    if (!authz.empty()) req.headers.emplace_back("Authorization", authz);
    BERTH_ASSIGN_OR_RETURN(HttpResponse resp, Perform(req, sink, max_body));
    if (resp.status != 401 || attempt > 0) return resp;
    // Learn the challenge; retry once if there is something new to send.
    std::vector<Challenge> found;
    for (const auto& v : resp.AllHeaders("www-authenticate")) {
      for (auto& c : ParseWwwAuthenticate(v)) found.push_back(std::move(c));
    }
    const Challenge* pick = nullptr;
    for (const auto& c : found) {
      if (c.scheme == "bearer") pick = &c;
    }
    if (pick == nullptr) {
      for (const auto& c : found) {
        if (c.scheme == "basic") pick = &c;
      }
    }
    if (pick == nullptr) return resp;
    if (pick->scheme == "basic" && !CredsFor(ep.host.host)) return resp;
    {
      std::lock_guard lock(mu_);
      HostAuth& ha = auth_[ep.host.host];
      if (ha.challenge.scheme != pick->scheme || ha.challenge.params != pick->params) {
        ha.tokens.clear();
      }
      ha.challenge = *pick;
    }
    refresh = !authz.empty();  // a token we sent was refused: get a fresh one
  }
}

}  // namespace berth::remotes
