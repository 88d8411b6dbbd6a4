#include "remotes/hosts.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"

namespace berth::remotes {
namespace {

TEST(HostsTest, Localhost) {
  EXPECT_TRUE(IsLocalhost("localhost"));
  EXPECT_TRUE(IsLocalhost("localhost:5000"));
  EXPECT_TRUE(IsLocalhost("127.0.0.1:5000"));
  EXPECT_TRUE(IsLocalhost("127.1.2.3"));
  EXPECT_TRUE(IsLocalhost("[::1]:5000"));
  EXPECT_TRUE(IsLocalhost("::1"));
  EXPECT_FALSE(IsLocalhost("docker.io"));
  EXPECT_FALSE(IsLocalhost("10.0.0.1:5000"));
  EXPECT_FALSE(IsLocalhost("localhost.example.com"));
}

TEST(HostsTest, DirectoryName) {
  EXPECT_EQ(HostDirectoryName("127.0.0.1:5000"), "127.0.0.1_5000_");
  EXPECT_EQ(HostDirectoryName("docker.io"), "docker.io");
}

TEST(HostsTest, Defaults) {
  auto d = ConfigureHosts({}, "docker.io");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].BaseUrl(), "https://registry-1.docker.io/v2");
  EXPECT_EQ((*d)[0].capabilities, kCapAll);

  auto l = ConfigureHosts({}, "127.0.0.1:5000");
  ASSERT_TRUE(l);
  EXPECT_EQ((*l)[0].BaseUrl(), "http://127.0.0.1:5000/v2");
  EXPECT_EQ((*l)[0].skip_verify, std::optional<bool>(true));

  auto ls = ConfigureHosts({.default_scheme = "https"}, "localhost:5000");
  ASSERT_TRUE(ls);
  EXPECT_EQ((*ls)[0].BaseUrl(), "https://localhost:5000/v2");
  EXPECT_FALSE((*ls)[0].skip_verify.has_value());

  auto o = ConfigureHosts({}, "quay.io");
  ASSERT_TRUE(o);
  EXPECT_EQ((*o)[0].BaseUrl(), "https://quay.io/v2");
  auto p = ConfigureHosts({.default_scheme = "http"}, "reg.example:5000");
  ASSERT_TRUE(p);
  EXPECT_EQ((*p)[0].BaseUrl(), "http://reg.example:5000/v2");
}

TEST(HostsTest, ParseFull) {
  auto hosts = ParseHostsToml("/etc/berth/certs.d/reg", R"(
server = "https://registry.example"
ca = "/abs/root.crt"

[host."https://zmirror.example:5000"]
  capabilities = ["pull", "resolve"]
  ca = ["ca.crt", "sub/other.crt"]
  client = [["c.cert", "c.key"], "both.pem"]
  skip_verify = true
  [host."https://zmirror.example:5000".header]
    x-custom = "v"
    x-multi = ["a", "b"]

[host."amirror.example/base/path"]
  capabilities = ["PUSH"]
  client = "single.pem"

[host."http://override.example/custom/root"]
  override_path = true
)");
  ASSERT_TRUE(hosts) << hosts.error().ToString();
  ASSERT_EQ(hosts->size(), 4u);
  const auto& z = (*hosts)[0];  // file order, not key order
  EXPECT_EQ(z.BaseUrl(), "https://zmirror.example:5000/v2");
  EXPECT_EQ(z.capabilities, kCapPull | kCapResolve);
  EXPECT_EQ(z.ca_files, (std::vector<std::string>{"/etc/berth/certs.d/reg/ca.crt",
                                                  "/etc/berth/certs.d/reg/sub/other.crt"}));
  ASSERT_EQ(z.client_pairs.size(), 2u);
  EXPECT_EQ(z.client_pairs[0].first, "/etc/berth/certs.d/reg/c.cert");
  EXPECT_EQ(z.client_pairs[0].second, "/etc/berth/certs.d/reg/c.key");
  EXPECT_EQ(z.client_pairs[1].second, "");
  EXPECT_EQ(z.skip_verify, std::optional<bool>(true));
  ASSERT_EQ(z.headers.size(), 3u);
  EXPECT_EQ(z.headers[0], (std::pair<std::string, std::string>{"x-custom", "v"}));

  const auto& a = (*hosts)[1];
  EXPECT_EQ(a.BaseUrl(), "https://amirror.example/base/path/v2");
  EXPECT_EQ(a.capabilities, kCapPush);
  ASSERT_EQ(a.client_pairs.size(), 1u);

  EXPECT_EQ((*hosts)[2].BaseUrl(), "http://override.example/custom/root");

  const auto& s = (*hosts)[3];
  EXPECT_EQ(s.BaseUrl(), "https://registry.example/v2");
  EXPECT_EQ(s.ca_files, std::vector<std::string>{"/abs/root.crt"});
  EXPECT_EQ(s.capabilities, kCapAll);
  EXPECT_FALSE(s.skip_verify.has_value());
}

TEST(HostsTest, ParseErrors) {
  EXPECT_FALSE(ParseHostsToml("/d", "server = "));
  EXPECT_FALSE(ParseHostsToml("/d", "server = 1"));
  EXPECT_FALSE(ParseHostsToml("/d", "[host.\"x\"]\ncapabilities = [\"fly\"]"));
  EXPECT_FALSE(ParseHostsToml("/d", "[host.\"x\"]\nca = 3"));
  EXPECT_FALSE(ParseHostsToml("/d", "[host.\"x\"]\nclient = [[\"a\"]]"));
  EXPECT_FALSE(ParseHostsToml("/d", "[host.\"x\"]\nskip_verify = \"yes\""));
  EXPECT_FALSE(ParseHostsToml("/d", "host = 3"));
  auto e = ParseHostsToml("/d", "[host.\"x\"]\ncapabilities = [\"fly\"]");
  EXPECT_NE(e.error().What().find("fly"), std::string::npos);
}

TEST(HostsTest, NoServerMeansDefaultLast) {
  auto t = fs::TempDir::Create("berth-hosts-");
  ASSERT_TRUE(t);
  std::string dir = t->Path() + "/127.0.0.1_5000_";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/hosts.toml",
                                  "[host.\"http://127.0.0.1:1\"]\n  capabilities = [\"pull\"]\n"));
  auto hosts = ConfigureHosts({.hosts_dir = t->Path()}, "127.0.0.1:5000");
  ASSERT_TRUE(hosts) << hosts.error().ToString();
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[0].BaseUrl(), "http://127.0.0.1:1/v2");
  EXPECT_EQ((*hosts)[1].BaseUrl(), "http://127.0.0.1:5000/v2");
  EXPECT_EQ((*hosts)[1].capabilities, kCapAll);
}

TEST(HostsTest, DirectoryLookupOrder) {
  auto t = fs::TempDir::Create("berth-hosts-");
  ASSERT_TRUE(t);
  const std::string& root = t->Path();
  EXPECT_EQ(*FindHostDir(root, "reg.example:5000"), "");
  std::filesystem::create_directories(root + "/_default");
  EXPECT_EQ(*FindHostDir(root, "reg.example:5000"), root + "/_default");
  std::filesystem::create_directories(root + "/reg.example:5000");
  EXPECT_EQ(*FindHostDir(root, "reg.example:5000"), root + "/reg.example:5000");
  std::filesystem::create_directories(root + "/reg.example_5000_");
  EXPECT_EQ(*FindHostDir(root, "reg.example:5000"), root + "/reg.example_5000_");
  std::filesystem::create_directories(root + "/docker.io");
  EXPECT_EQ(*FindHostDir(root, "docker.io"), root + "/docker.io");
}

TEST(HostsTest, CertFilesFallback) {
  auto t = fs::TempDir::Create("berth-hosts-");
  ASSERT_TRUE(t);
  std::string dir = t->Path() + "/reg.example";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/ca.crt", "x"));
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/client.cert", "x"));
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/client.key", "x"));
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/lonely.cert", "x"));
  // Invalid TOML falls back to the certificate files, as containerd.
  ASSERT_TRUE(fs::WriteFileAtomic(dir + "/hosts.toml", "this is = = not toml"));
  auto hosts = ConfigureHosts({.hosts_dir = t->Path()}, "reg.example");
  ASSERT_TRUE(hosts) << hosts.error().ToString();
  ASSERT_EQ(hosts->size(), 1u);
  const auto& h = (*hosts)[0];
  EXPECT_EQ(h.BaseUrl(), "https://reg.example/v2");
  EXPECT_EQ(h.ca_files, std::vector<std::string>{dir + "/ca.crt"});
  ASSERT_EQ(h.client_pairs.size(), 2u);
  EXPECT_EQ(h.client_pairs[0],
            (std::pair<std::string, std::string>{dir + "/client.cert", dir + "/client.key"}));
  EXPECT_EQ(h.client_pairs[1], (std::pair<std::string, std::string>{dir + "/lonely.cert", ""}));
}

}  // namespace
}  // namespace berth::remotes
