#include "remotes/http.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <optional>

#include <unistd.h>

#include "common/fs.h"

namespace berth::remotes {
namespace {

constexpr int kMaxRedirects = 10;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

struct Transfer {
  CURL* curl = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  HttpResponse* resp = nullptr;
  std::optional<Error> error;  // set by a callback that aborted
  // upload
  const HttpRequest* req = nullptr;
  int64_t sent = 0;
  std::string pending;  // bytes read but not yet handed to curl
  size_t pending_pos = 0;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->resp->headers.clear();  // a new response (interim 1xx, ...)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                  std::string(Trim(line.substr(colon + 1))));
  }
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 300 && code < 400) return len;  // redirect bodies are dropped
  if (code >= 200 && code < 300 && t->sink != nullptr && *t->sink) {
    Status st = (*t->sink)(code, std::string_view(data, len));
    if (!st) {
      t->error = std::move(st).error();
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->max_body) {
    if (code >= 200 && code < 300) {
      t->error =
          Error(Errc::kResourceExhausted, fmt::format("{} {}: response body larger than {} bytes",
                                                      t->req->method, t->req->url, t->max_body));
      return 0;
    }
    // Error bodies are only for messages: keep the start.
    t->resp->body.append(data, std::min(len, t->max_body - t->resp->body.size()));
    return len;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t want = size * n;
  if (t->pending_pos >= t->pending.size()) {
    t->pending.clear();
    t->pending_pos = 0;
    if (t->sent >= t->req->body_size) return 0;
    auto chunk = t->req->read(t->sent, std::max<size_t>(want, 64 * 1024));
    if (!chunk) {
      t->error = std::move(chunk).error();
      return CURL_READFUNC_ABORT;
    }
    if (chunk->empty()) {
      t->error = FailedPrecondition(
          fmt::format("request body ended after {} of {} bytes", t->sent, t->req->body_size));
      return CURL_READFUNC_ABORT;
    }
    t->sent += static_cast<int64_t>(chunk->size());
    t->pending = std::move(*chunk);
  }
  size_t k = std::min(want, t->pending.size() - t->pending_pos);
  std::memcpy(buf, t->pending.data() + t->pending_pos, k);
  t->pending_pos += k;
  return k;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

// One request/response exchange, no redirect handling. Returns the response (any status).
Result<HttpResponse> PerformOnce(const HttpRequest& req, const BodySink* sink, size_t max_body) {
  GlobalInit();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Unknown("curl_easy_init failed");
  CURL* c = curl.get();
  HttpResponse resp;
  Transfer t{.curl = c, .sink = sink, .max_body = max_body, .resp = &resp, .req = &req};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for 60 s) fails instead of hanging forever.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (!req.user_agent.empty()) curl_easy_setopt(c, CURLOPT_USERAGENT, req.user_agent.c_str());

  curl_blob ca_blob{};
  if (req.tls.ca_pem) {
    ca_blob.data = const_cast<char*>(req.tls.ca_pem->data());
    ca_blob.len = req.tls.ca_pem->size();
    ca_blob.flags = CURL_BLOB_NOCOPY;
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_blob);
  }
  if (!req.tls.client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, req.tls.client_cert.c_str());
    curl_easy_setopt(
        c, CURLOPT_SSLKEY,
        req.tls.client_key.empty() ? req.tls.client_cert.c_str() : req.tls.client_key.c_str());
  }
  if (req.tls.skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  if (req.read) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body_size));
  } else if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    // An empty body: Content-Length: 0.
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
  }

  curl_slist* raw = nullptr;
  for (const auto& [k, v] : req.headers) {
    raw = curl_slist_append(raw, fmt::format("{}: {}", k, v).c_str());
  }
  raw = curl_slist_append(raw, "Expect:");  // no 100-continue round trip
  std::unique_ptr<curl_slist, SlistDeleter> slist(raw);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, raw);

  CURLcode rc = curl_easy_perform(c);
  if (t.error) return std::move(*t.error);
  if (rc != CURLE_OK) {
    std::string msg = errbuf[0] != 0 ? std::string(errbuf) : curl_easy_strerror(rc);
    Errc code = Errc::kUnavailable;
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_SSL_CERTPROBLEM) {
      code = Errc::kFailedPrecondition;  // TLS configuration: another host will not help
    }
    return Error(code, fmt::format("{} {}: {}", req.method, req.url, msg));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  resp.url = req.url;
  char* redirect = nullptr;
  if (resp.status >= 300 && resp.status < 400 &&
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect != nullptr) {
    // Replace a relative Location with curl's absolute form.
    for (auto& [k, v] : resp.headers) {
      if (k == "location") v = redirect;
    }
  }
  return resp;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> HttpResponse::AllHeaders(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::string UrlOrigin(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return "";
  size_t end = url.find_first_of("/?#", sep + 3);
  return Lower(url.substr(0, end));
}

std::string ResolveUrl(std::string_view base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return std::string(location);
  if (location.starts_with("/")) return UrlOrigin(base) + std::string(location);
  std::string b(base.substr(0, base.find_first_of("?#")));
  b = b.substr(0, b.rfind('/') + 1);
  return b + std::string(location);
}

Result<TlsConfig> MakeTlsConfig(const std::vector<std::string>& ca_files,
                                const std::vector<std::pair<std::string, std::string>>& clients,
                                bool skip_verify) {
  TlsConfig tls;
  tls.skip_verify = skip_verify;
  if (!ca_files.empty()) {
    std::string pem;
    for (const char* sys :
         {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}) {
      if (auto data = fs::ReadFile(sys)) {
        pem = std::move(*data);
        pem += "\n";
        break;
      }
    }
    for (const auto& f : ca_files) {
      auto data = fs::ReadFile(f);
      if (!data) return std::move(data).error().Wrap(fmt::format("unable to read CA cert {}", f));
      if (data->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        return InvalidArgument(fmt::format("unable to load CA cert {}: no PEM certificate", f));
      }
      pem += *data;
      pem += "\n";
    }
    tls.ca_pem = std::make_shared<const std::string>(std::move(pem));
  }
  if (!clients.empty()) {
    // libcurl takes one client certificate; the first pair is used.
    tls.client_cert = clients.front().first;
    tls.client_key = clients.front().second;
    for (const auto& [cert, key] : clients) {
      if (::access(cert.c_str(), R_OK) != 0) {
        return ErrnoError(errno, fmt::format("unable to read client certificate {}", cert));
      }
      if (!key.empty() && ::access(key.c_str(), R_OK) != 0) {
        return ErrnoError(errno, fmt::format("unable to read client key {}", key));
      }
    }
  }
  return tls;
}

Result<HttpResponse> Perform(const HttpRequest& req, const BodySink* sink, size_t max_body) {
  HttpRequest cur = req;
  std::string origin = UrlOrigin(req.url);
  for (int i = 0;; ++i) {
    BERTH_ASSIGN_OR_RETURN(HttpResponse resp, PerformOnce(cur, sink, max_body));
    bool redirect = resp.status == 301 || resp.status == 302 || resp.status == 303 ||
                    resp.status == 307 || resp.status == 308;
    std::string location = resp.Header("location");
    if (!redirect || location.empty()) return resp;
    if (i >= kMaxRedirects) {
      return Unavailable(
          fmt::format("{} {}: stopped after {} redirects", req.method, req.url, kMaxRedirects));
    }
    cur.url = ResolveUrl(cur.url, location);
    if (resp.status == 303 ||
        ((resp.status == 301 || resp.status == 302) && cur.method == "POST")) {
      cur.method = cur.method == "HEAD" ? "HEAD" : "GET";
      cur.read = nullptr;
      cur.body_size = 0;
    }
    if (UrlOrigin(cur.url) != origin) {
      // Credentials are for the registry, not for the storage it redirects to.
      std::erase_if(cur.headers, [](const auto& h) { return Lower(h.first) == "authorization"; });
    }
  }
}

}  // namespace berth::remotes
