// The registry client (src/remotes) against a real docker-registry on 127.0.0.1: plain HTTP,
// TLS with hosts.toml CAs, htpasswd basic auth, bearer tokens (tests/fixtures/regproxy.py in
// front of a plain registry), interrupted and corrupted blobs, a down mirror, and push.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/digest.h"
#include "common/fs.h"
#include "harness.h"
#include "remotes/registry.h"

namespace berth::testing {
namespace {

using remotes::Credentials;
using remotes::Fetcher;
using remotes::OciDescriptor;
using remotes::Resolver;
using remotes::ResolverOptions;

constexpr const char* kIndexType = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerListType = "application/vnd.docker.distribution.manifest.list.v2+json";

std::string Script(const std::string& name) {
  return std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/" + name;
}

Result<std::string> FetchAll(Fetcher& f, const OciDescriptor& d, int64_t offset = 0) {
  std::string out;
  BERTH_TRY(f.Fetch(d, offset, [&](std::string_view c) {
    out.append(c);
    return Ok();
  }));
  return out;
}

OciDescriptor DescOf(const nlohmann::json& j) {
  return OciDescriptor{.media_type = j.value("mediaType", ""),
                       .digest = j.value("digest", ""),
                       .size = j.value("size", int64_t{0})};
}

// A port on 127.0.0.1 nothing listens on (bound, then closed).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 1;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Writes <root>/<host dir>/hosts.toml for `host`.
void WriteHosts(const std::string& root, const std::string& host, const std::string& toml) {
  std::string dir = root + "/" + remotes::HostDirectoryName(host);
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/hosts.toml", toml));
}

// The image behind a tag, walked down to one platform manifest.
struct Image {
  OciDescriptor root;
  OciDescriptor manifest;
  std::string manifest_body;
  OciDescriptor config;
  std::vector<OciDescriptor> layers;
};

// Resolves `ref` and fetches manifest, config and every layer, checking each digest here too.
Result<Image> PullImage(Resolver& r, const std::string& ref) {
  Image img;
  BERTH_ASSIGN_OR_RETURN(auto resolved, r.Resolve(ref));
  img.root = resolved.desc;
  BERTH_ASSIGN_OR_RETURN(auto fetcher, r.NewFetcher(ref));
  BERTH_ASSIGN_OR_RETURN(std::string body, FetchAll(*fetcher, img.root));
  img.manifest = img.root;
  auto j = nlohmann::json::parse(body);
  if (img.root.media_type == kIndexType || img.root.media_type == kDockerListType) {
    img.manifest = DescOf(j["manifests"][0]);
    BERTH_ASSIGN_OR_RETURN(body, FetchAll(*fetcher, img.manifest));
    j = nlohmann::json::parse(body);
  }
  img.manifest_body = body;
  img.config = DescOf(j["config"]);
  for (const auto& l : j["layers"]) img.layers.push_back(DescOf(l));
  std::vector<OciDescriptor> blobs = img.layers;
  blobs.push_back(img.config);
  for (const auto& d : blobs) {
    BERTH_ASSIGN_OR_RETURN(std::string data, FetchAll(*fetcher, d));
    if (Digest::FromBytes(data).String() != d.digest ||
        static_cast<int64_t>(data.size()) != d.size) {
      return FailedPrecondition("fetched bytes of " + d.digest + " do not match");
    }
  }
  return img;
}

// The proxy's counters (its /_stats endpoint).
nlohmann::json Stats(const RegistryProxy& proxy) {
  auto r = Exec({"curl", "-sf", "http://" + proxy.Addr() + "/_stats"});
  return nlohmann::json::parse(r.out, nullptr, false);
}

class RemotesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = Registry::Start(Registry::Options{.tags = {"busybox", "big"}}).release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(registry_, nullptr) << "plain registry did not start";
    auto t = fs::TempDir::Create("berth-remotes-it-");
    ASSERT_TRUE(t);
    tmp_ = std::make_unique<fs::TempDir>(std::move(*t));
    hosts_ = tmp_->Path() + "/hosts";
    std::filesystem::create_directories(hosts_);
  }
  std::string Ref(const std::string& tag) { return registry_->Ref(tag); }

  static Registry* registry_;
  std::unique_ptr<fs::TempDir> tmp_;
  std::string hosts_;
};
Registry* RemotesTest::registry_ = nullptr;

TEST_F(RemotesTest, ResolveAndFetchWithPlainHttpHostsToml) {
  WriteHosts(hosts_, registry_->Addr(), "server = \"http://" + registry_->Addr() + "\"\n");
  Resolver r(ResolverOptions{.hosts_dir = hosts_});
  auto img = PullImage(r, Ref("busybox"));
  ASSERT_TRUE(img) << img.error().ToString();
  EXPECT_FALSE(img->layers.empty());
  EXPECT_EQ(img->config.media_type, "application/vnd.oci.image.config.v1+json");
  // Resolve by digest gives the same descriptor.
  auto by_digest = r.Resolve(registry_->Addr() + "/test/busybox@" + img->root.digest);
  ASSERT_TRUE(by_digest) << by_digest.error().ToString();
  EXPECT_EQ(by_digest->desc.digest, img->root.digest);
  EXPECT_EQ(by_digest->desc.size, img->root.size);
  EXPECT_EQ(by_digest->desc.media_type, img->root.media_type);
  EXPECT_EQ(by_digest->name, registry_->Addr() + "/test/busybox@" + img->root.digest);

  // A fetcher may outlive its resolver.
  std::unique_ptr<Fetcher> orphan;
  {
    Resolver gone(ResolverOptions{.hosts_dir = hosts_});
    auto f = gone.NewFetcher(Ref("busybox"));
    ASSERT_TRUE(f);
    orphan = std::move(*f);
  }
  auto config = FetchAll(*orphan, img->config);
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(static_cast<int64_t>(config->size()), img->config.size);
}

TEST_F(RemotesTest, PlainHttpOptionAndLocalhostDefault) {
  Resolver plain(ResolverOptions{.plain_http = true});
  auto a = PullImage(plain, Ref("busybox"));
  ASSERT_TRUE(a) << a.error().ToString();
  Resolver defaults(ResolverOptions{});  // 127.0.0.1 defaults to http, as containerd
  auto b = PullImage(defaults, Ref("busybox"));
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(a->root.digest, b->root.digest);
}

TEST_F(RemotesTest, HttpsAgainstPlainRegistryFails) {
  // A server without a scheme means https: the plain registry cannot speak TLS.
  WriteHosts(hosts_, registry_->Addr(), "server = \"" + registry_->Addr() + "\"\n");
  Resolver r(ResolverOptions{.hosts_dir = hosts_});
  auto res = r.Resolve(Ref("busybox"));
  ASSERT_FALSE(res);
  EXPECT_NE(res.error().ToString().find("https://" + registry_->Addr()), std::string::npos)
      << res.error().ToString();
}

TEST_F(RemotesTest, NotFound) {
  Resolver r(ResolverOptions{});
  auto res = r.Resolve(registry_->Addr() + "/test/nothing-here:latest");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().Code(), Errc::kNotFound) << res.error().ToString();
  EXPECT_EQ(res.error().ToString(), registry_->Addr() + "/test/nothing-here:latest: not found");

  auto tag = r.Resolve(registry_->Addr() + "/test/busybox:no-such-tag");
  ASSERT_FALSE(tag);
  EXPECT_EQ(tag.error().Code(), Errc::kNotFound);

  auto f = r.NewFetcher(Ref("busybox"));
  ASSERT_TRUE(f);
  OciDescriptor missing{.media_type = "application/octet-stream",
                        .digest = Digest::FromBytes("nope").String(),
                        .size = 4};
  auto data = FetchAll(**f, missing);
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().Code(), Errc::kNotFound) << data.error().ToString();
  EXPECT_NE(data.error().ToString().find(missing.digest), std::string::npos);

  // Manifests over 4 MiB are refused before any request.
  OciDescriptor huge{.media_type = "application/vnd.oci.image.manifest.v1+json",
                     .digest = missing.digest,
                     .size = int64_t{5} << 20};
  auto too_big = FetchAll(**f, huge);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().Code(), Errc::kResourceExhausted) << too_big.error().ToString();

  auto bad = r.Resolve("not a reference");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().Code(), Errc::kInvalidArgument);
}

TEST_F(RemotesTest, DownMirrorFallsThroughToServer) {
  int port = ClosedPort();
  WriteHosts(hosts_, registry_->Addr(),
             "server = \"http://" + registry_->Addr() + "\"\n[host.\"http://127.0.0.1:" +
                 std::to_string(port) + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
  Resolver r(ResolverOptions{.hosts_dir = hosts_});
  auto img = PullImage(r, Ref("busybox"));
  ASSERT_TRUE(img) << img.error().ToString();

  // Only the down mirror: the error names it and says unavailable.
  WriteHosts(hosts_, registry_->Addr(),
             "server = \"http://127.0.0.1:" + std::to_string(port) +
                 "\"\n[host.\"http://127.0.0.1:" + std::to_string(port) +
                 "\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
  Resolver down(ResolverOptions{.hosts_dir = hosts_});
  auto res = down.Resolve(Ref("busybox"));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().Code(), Errc::kUnavailable) << res.error().ToString();
  EXPECT_NE(res.error().ToString().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

TEST_F(RemotesTest, ConcurrentFetchesShareOneResolver) {
  Resolver r(ResolverOptions{});
  auto img = PullImage(r, Ref("big"));
  ASSERT_TRUE(img) << img.error().ToString();
  std::vector<OciDescriptor> blobs = img->layers;
  blobs.push_back(img->config);
  std::vector<std::string> errors(blobs.size() * 2);
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < errors.size(); ++i) {
      threads.emplace_back([&, i] {
        auto f = r.NewFetcher(Ref("big"));
        if (!f) {
          errors[i] = f.error().ToString();
          return;
        }
        auto d = FetchAll(**f, blobs[i % blobs.size()]);
        if (!d) errors[i] = d.error().ToString();
      });
    }
  }
  for (const auto& e : errors) EXPECT_EQ(e, "");
}

TEST_F(RemotesTest, BearerTokenAuth) {
  auto proxy =
      RegistryProxy::Start("http://" + registry_->Addr(), {"--user", "tok", "--password", "pw"});
  ASSERT_NE(proxy, nullptr);
  std::string ref = proxy->Addr() + "/test/busybox:latest";

  Resolver anon(ResolverOptions{});
  auto res = anon.Resolve(ref);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().Code(), Errc::kPermissionDenied) << res.error().ToString();
  EXPECT_NE(res.error().ToString().find("401"), std::string::npos) << res.error().ToString();

  Resolver wrong(ResolverOptions{.credentials = Credentials{"tok", "bad"}});
  auto w = wrong.Resolve(ref);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().ToString().find("token"), std::string::npos) << w.error().ToString();

  Resolver r(ResolverOptions{.credentials = Credentials{"tok", "pw"}});
  auto img = PullImage(r, ref);
  ASSERT_TRUE(img) << img.error().ToString();
  auto stats = Stats(*proxy);
  ASSERT_TRUE(stats.is_object());
  EXPECT_GE(stats["tokens"].get<int>(), 1);
  // Tokens are cached per scope: one per repository/scope, not one per request.
  int tokens = stats["tokens"].get<int>();
  auto again = PullImage(r, ref);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(Stats(*proxy)["tokens"].get<int>(), tokens);
}

TEST_F(RemotesTest, BearerAnonymousAccessToken) {
  auto proxy = RegistryProxy::Start("http://" + registry_->Addr(), {"--access-token"});
  ASSERT_NE(proxy, nullptr);
  Resolver r(ResolverOptions{});
  auto img = PullImage(r, proxy->Addr() + "/test/busybox:latest");
  ASSERT_TRUE(img) << img.error().ToString();
  EXPECT_GE(Stats(*proxy)["challenges"].get<int>(), 1);
}

TEST_F(RemotesTest, RedirectDropsAuthorizationForAnotherHost) {
  auto proxy = RegistryProxy::Start("http://" + registry_->Addr(), {"--redirect-blobs"});
  ASSERT_NE(proxy, nullptr);
  Resolver r(ResolverOptions{});
  auto img = PullImage(r, proxy->Addr() + "/test/busybox:latest");
  ASSERT_TRUE(img) << img.error().ToString();
  auto stats = Stats(*proxy);
  // config + layers came through the redirect (127.0.0.1:P -> localhost:P), without the token.
  EXPECT_EQ(stats["redirected"].get<size_t>(), img->layers.size() + 1);
  EXPECT_EQ(stats["redirect_auth"].get<int>(), 0);
  EXPECT_GE(stats["tokens"].get<int>(), 1);
}

TEST_F(RemotesTest, ResumeAfterCutConnection) {
  auto proxy = RegistryProxy::Start("http://" + registry_->Addr(), {"--cut-after", "100000"});
  ASSERT_NE(proxy, nullptr);
  std::string ref = proxy->Addr() + "/test/big:latest";
  Resolver r(ResolverOptions{});
  auto resolved = r.Resolve(ref);
  ASSERT_TRUE(resolved) << resolved.error().ToString();
  auto f = r.NewFetcher(ref);
  ASSERT_TRUE(f);
  auto manifest = FetchAll(**f, resolved->desc);
  ASSERT_TRUE(manifest) << manifest.error().ToString();
  auto j = nlohmann::json::parse(*manifest);
  if (resolved->desc.media_type == kIndexType) {
    auto m = FetchAll(**f, DescOf(j["manifests"][0]));
    ASSERT_TRUE(m);
    j = nlohmann::json::parse(*m);
  }
  // The largest layer.
  OciDescriptor layer;
  for (const auto& l : j["layers"]) {
    if (l["size"].get<int64_t>() > layer.size) layer = DescOf(l);
  }
  ASSERT_GT(layer.size, 100000);
  std::string got;
  auto sink = [&](std::string_view c) {
    got.append(c);
    return Ok();
  };
  Status first = (*f)->Fetch(layer, 0, sink);
  ASSERT_FALSE(first) << "the proxy was to cut the first blob GET";
  EXPECT_EQ(first.error().Code(), Errc::kUnavailable) << first.error().ToString();
  EXPECT_EQ(got.size(), 100000u);
  Status second = (*f)->Fetch(layer, static_cast<int64_t>(got.size()), sink);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(static_cast<int64_t>(got.size()), layer.size);
  EXPECT_EQ(Digest::FromBytes(got).String(), layer.digest);
  auto stats = Stats(*proxy);
  EXPECT_EQ(stats["cuts"].get<int>(), 1);
  EXPECT_GE(stats["ranges"].get<int>(), 1);
}

TEST_F(RemotesTest, CorruptBlobIsRefused) {
  auto proxy = RegistryProxy::Start("http://" + registry_->Addr(), {"--corrupt"});
  ASSERT_NE(proxy, nullptr);
  Resolver r(ResolverOptions{});
  auto img = PullImage(r, proxy->Addr() + "/test/busybox:latest");
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().Code(), Errc::kFailedPrecondition) << img.error().ToString();
  EXPECT_NE(img.error().ToString().find("digest mismatch"), std::string::npos)
      << img.error().ToString();
}

// A registry serving a 16 MiB manifest (containerd's limit is 4 MiB): refused with the limit
// named, without reading it whole.
TEST_F(RemotesTest, OversizeManifestIsRefusedBeforeItIsRead) {
  constexpr int kPad = 16 << 20;
  auto proxy = RegistryProxy::Start("http://" + registry_->Addr(),
                                    {"--pad-manifests", std::to_string(kPad)});
  ASSERT_NE(proxy, nullptr);
  Resolver r(ResolverOptions{});
  auto img = PullImage(r, proxy->Addr() + "/test/busybox:latest");
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().Code(), Errc::kResourceExhausted) << img.error().ToString();
  EXPECT_NE(img.error().ToString().find(std::to_string(4 << 20)), std::string::npos)
      << img.error().ToString();
  auto stats = Stats(*proxy);
  EXPECT_LE(stats["padded_sent"].get<int64_t>(), int64_t{5} << 20) << stats.dump();
}

TEST_F(RemotesTest, PushThenResolveAndMount) {
  Resolver r(ResolverOptions{});
  auto img = PullImage(r, Ref("busybox"));
  ASSERT_TRUE(img) << img.error().ToString();
  auto f = r.NewFetcher(Ref("busybox"));
  ASSERT_TRUE(f);

  std::string target = registry_->Addr() + "/test/pushed-" + std::to_string(::getpid()) + ":v1";
  auto p = r.NewPusher(target);
  ASSERT_TRUE(p) << p.error().ToString();
  auto& pusher = **p;

  // Layers: mounted from test/busybox (same registry).
  for (const auto& l : img->layers) {
    auto exists = pusher.Exists(l);
    ASSERT_TRUE(exists) << exists.error().ToString();
    EXPECT_FALSE(*exists);
    auto mounted = pusher.Mount(l, "test/busybox");
    ASSERT_TRUE(mounted) << mounted.error().ToString();
    EXPECT_TRUE(*mounted);
    auto now = pusher.Exists(l);
    ASSERT_TRUE(now);
    EXPECT_TRUE(*now);
  }
  // A blob unknown anywhere cannot be mounted.
  OciDescriptor fresh{.media_type = "application/octet-stream",
                      .digest = Digest::FromBytes("fresh " + target).String(),
                      .size = static_cast<int64_t>(("fresh " + target).size())};
  auto no_mount = pusher.Mount(fresh, "test/busybox");
  ASSERT_TRUE(no_mount) << no_mount.error().ToString();
  EXPECT_FALSE(*no_mount);
  std::string fresh_data = "fresh " + target;
  auto read_fresh = [&](int64_t off, size_t n) -> Result<std::string> {
    return fresh_data.substr(static_cast<size_t>(off), n);
  };
  ASSERT_TRUE(pusher.PushBlob(fresh, read_fresh));
  // A body that does not match the digest is refused by the registry.
  OciDescriptor lie = fresh;
  lie.digest = Digest::FromBytes("something else entirely.....").String();
  Status lied = pusher.PushBlob(lie, read_fresh);
  EXPECT_FALSE(lied);

  // Config: uploaded (POST + PUT) from the fetched bytes.
  auto config = FetchAll(**f, img->config);
  ASSERT_TRUE(config);
  Status pushed = pusher.PushBlob(img->config, [&](int64_t off, size_t n) -> Result<std::string> {
    return config->substr(static_cast<size_t>(off), n);
  });
  ASSERT_TRUE(pushed) << pushed.error().ToString();
  auto cfg_exists = pusher.Exists(img->config);
  ASSERT_TRUE(cfg_exists);
  EXPECT_TRUE(*cfg_exists);

  ASSERT_TRUE(pusher.PushManifest(img->manifest, img->manifest_body, "v1"));
  auto back = r.Resolve(target);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->desc.digest, img->manifest.digest);
  EXPECT_EQ(back->desc.media_type, img->manifest.media_type);
  auto again = PullImage(r, target);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->config.digest, img->config.digest);
  // By digest (no tag) too.
  ASSERT_TRUE(pusher.PushManifest(img->manifest, img->manifest_body, ""));
}

TEST_F(RemotesTest, PushThroughBearerProxy) {
  auto proxy = RegistryProxy::Start("http://" + registry_->Addr());
  ASSERT_NE(proxy, nullptr);
  Resolver r(ResolverOptions{});
  std::string target = proxy->Addr() + "/test/viaproxy:latest";
  auto p = r.NewPusher(target);
  ASSERT_TRUE(p);
  std::string data = "blob through the proxy";
  OciDescriptor d{.media_type = "application/octet-stream",
                  .digest = Digest::FromBytes(data).String(),
                  .size = static_cast<int64_t>(data.size())};
  Status st = (*p)->PushBlob(d, [&](int64_t off, size_t n) -> Result<std::string> {
    return data.substr(static_cast<size_t>(off), n);
  });
  ASSERT_TRUE(st) << st.error().ToString();
  auto f = r.NewFetcher(target);
  ASSERT_TRUE(f);
  auto back = FetchAll(**f, d);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, data);
}

TEST(RemotesTlsTest, CaFromHostsToml) {
  auto tmp = fs::TempDir::Create("berth-remotes-tls-");
  ASSERT_TRUE(tmp);
  std::string certs = tmp->Path() + "/certs";
  auto gen = Exec({Script("registry.sh"), "gencert", certs});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto reg = Registry::Start(Registry::Options{
      .tls_cert = certs + "/cert.pem", .tls_key = certs + "/key.pem", .tags = {"busybox"}});
  ASSERT_NE(reg, nullptr);
  std::string hosts = tmp->Path() + "/hosts";
  std::string ref = reg->Ref("busybox");

  // No CA configured: verification fails, and says so.
  WriteHosts(hosts, reg->Addr(), "server = \"https://" + reg->Addr() + "\"\n");
  {
    Resolver r(ResolverOptions{.hosts_dir = hosts});
    auto res = r.Resolve(ref);
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().Code(), Errc::kFailedPrecondition) << res.error().ToString();
    EXPECT_NE(res.error().ToString().find("https://" + reg->Addr()), std::string::npos);
  }
  // The CA from hosts.toml (relative path against the host directory).
  std::string hostdir = hosts + "/" + remotes::HostDirectoryName(reg->Addr());
  std::filesystem::copy_file(certs + "/ca.pem", hostdir + "/myca.pem");
  WriteHosts(hosts, reg->Addr(), "server = \"https://" + reg->Addr() + "\"\nca = \"myca.pem\"\n");
  {
    Resolver r(ResolverOptions{.hosts_dir = hosts});
    auto img = PullImage(r, ref);
    ASSERT_TRUE(img) << img.error().ToString();
  }
  // skip_verify instead of a CA.
  WriteHosts(hosts, reg->Addr(), "server = \"https://" + reg->Addr() + "\"\nskip_verify = true\n");
  {
    Resolver r(ResolverOptions{.hosts_dir = hosts});
    auto img = PullImage(r, ref);
    ASSERT_TRUE(img) << img.error().ToString();
  }
  // A CA file that does not exist: the error names it.
  WriteHosts(hosts, reg->Addr(), "server = \"https://" + reg->Addr() + "\"\nca = \"gone.pem\"\n");
  {
    Resolver r(ResolverOptions{.hosts_dir = hosts});
    auto res = r.Resolve(ref);
    ASSERT_FALSE(res);
    EXPECT_NE(res.error().ToString().find(hostdir + "/gone.pem"), std::string::npos)
        << res.error().ToString();
  }
}

TEST(RemotesBasicAuthTest, Htpasswd) {
  auto tmp = fs::TempDir::Create("berth-remotes-auth-");
  ASSERT_TRUE(tmp);
  std::string htpasswd = tmp->Path() + "/htpasswd";
  auto h = Exec({Script("registry.sh"), "htpasswd", htpasswd, "alice", "s3cret"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  auto reg = Registry::Start(
      Registry::Options{.htpasswd = htpasswd, .creds = "alice:s3cret", .tags = {"busybox"}});
  ASSERT_NE(reg, nullptr);
  std::string ref = reg->Ref("busybox");
  {
    Resolver r(ResolverOptions{});
    auto res = r.Resolve(ref);
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().Code(), Errc::kPermissionDenied) << res.error().ToString();
    EXPECT_NE(res.error().ToString().find("401"), std::string::npos);
  }
  {
    Resolver r(ResolverOptions{.credentials = Credentials{"alice", "wrong"}});
    auto res = r.Resolve(ref);
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().Code(), Errc::kPermissionDenied) << res.error().ToString();
  }
  {
    Resolver r(ResolverOptions{.credentials = Credentials{"alice", "s3cret"}});
    auto img = PullImage(r, ref);
    ASSERT_TRUE(img) << img.error().ToString();
  }
  {
    // Per-host credentials win over the default ones.
    Resolver r(ResolverOptions{
        .credentials = Credentials{"alice", "wrong"},
        .credentials_for = [&](std::string_view host) -> std::optional<Credentials> {
          if (host == reg->Addr()) return Credentials{"alice", "s3cret"};
          return std::nullopt;
        }});
    auto img = PullImage(r, ref);
    ASSERT_TRUE(img) << img.error().ToString();
  }
}

}  // namespace
}  // namespace berth::testing
