// TLS for the streaming server (enable_tls_streaming): a PEM key pair from the configuration, or
// a self-signed certificate made at start when none is configured (containerd's selfSignTLS).
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <memory>

#include "cri/streaming/server.h"

namespace berth::cri::streaming {
namespace {

std::string OpensslError() {
  unsigned long e = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// An ECDSA P-256 certificate for the host name and `address`, valid for a year, signed by its
// own key.
Status SelfSign(SSL_CTX* ctx, const std::string& address) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Unknown("generate the streaming server's key: " + OpensslError());
  X509Ptr cert(X509_new());
  uint64_t serial = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial)) != 1) {
    return Unknown("random serial: " + OpensslError());
  }
  char host[256] = "localhost";
  (void)gethostname(host, sizeof(host) - 1);
  std::string san = fmt::format("DNS:{},DNS:localhost,IP:127.0.0.1", host);
  if (!address.empty() && address != "127.0.0.1" && address != "0.0.0.0" && address != "::") {
    san += ",IP:" + address;
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  bool ok =
      X509_set_version(cert.get(), 2) == 1 &&
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600) != nullptr &&
      X509_set_pubkey(cert.get(), key.get()) == 1 &&
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("berth"), -1, -1, 0) == 1 &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(host), -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert.get(), name) == 1;
  if (ok) {
    X509V3_CTX v3{};
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                              {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                              {NID_ext_key_usage, "serverAuth"}}) {
      ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
      ok = ok && ext && X509_add_ext(cert.get(), ext.get(), -1) == 1;
    }
  }
  ok = ok && X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  ok = ok && SSL_CTX_use_certificate(ctx, cert.get()) == 1 &&
       SSL_CTX_use_PrivateKey(ctx, key.get()) == 1;
  if (!ok) return Unknown("make the streaming server's self-signed certificate: " + OpensslError());
  return Ok();
}

}  // namespace

Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ServerOptions& o) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return InvalidArgument(o.tls_cert_file.empty() ? "must set X509KeyPairStreaming.TLSCertFile"
                                                   : "must set X509KeyPairStreaming.TLSKeyFile");
  }
  if (o.tls_cert_file.empty()) {
    BERTH_TRY(SelfSign(ctx->native_handle(), o.address));
    return ctx;
  }
  std::error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert_file, ec);
  if (!ec) ctx->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return InvalidArgument(
        fmt::format("failed to load x509 key pair for stream server ({}, {}): {}", o.tls_cert_file,
                    o.tls_key_file, ec.message()));
  }
  return ctx;
}

}  // namespace berth::cri::streaming
