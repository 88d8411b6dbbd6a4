#include "cri/config.h"

#include <gtest/gtest.h>

namespace berth::cri {
namespace {

Result<Config> Parse(std::string_view text, std::vector<std::string>* warnings = nullptr) {
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(std::string(e.description()));
  }
  return Config::FromToml(t, warnings);
}

TEST(CriConfigTest, DefaultsAreContainerds) {
  auto c = Parse("");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->sandbox_image, "registry.k8s.io/pause:3.6");
  EXPECT_EQ(c->stream_server_address, "127.0.0.1");
  EXPECT_EQ(c->stream_server_port, "0");
  EXPECT_EQ(c->max_container_log_line_size, 16384);
  EXPECT_EQ(c->snapshotter, "overlayfs");
  EXPECT_EQ(c->default_runtime_name, "runc");
  ASSERT_TRUE(c->runtimes.contains("runc"));
  EXPECT_EQ(c->runtimes.at("runc").runtime_type, "io.containerd.runc.v2");
  EXPECT_EQ(c->cni_bin_dir, "/opt/cni/bin");
  EXPECT_EQ(c->cni_conf_dir, "/etc/cni/net.d");
  EXPECT_EQ(c->cni_max_conf_num, 1);
  EXPECT_TRUE(c->disable_hugetlb_controller);
  // The defaults printed by `berthd config default` parse back to the same values.
  auto d = Parse(Config::DefaultToml());
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->sandbox_image, c->sandbox_image);
  EXPECT_EQ(d->runtimes.size(), 1u);
}

// A config written for a containerd 1.6 Kubernetes node (kubeadm's and the docs' shape).
TEST(CriConfigTest, AContainerdNodeConfigParsesUnchanged) {
  std::vector<std::string> warnings;
  auto c = Parse(R"(
sandbox_image = "registry.k8s.io/pause:3.9"
max_container_log_line_size = -1
enable_unprivileged_ports = true
enable_cdi = false
[containerd]
  default_runtime_name = "runc"
  snapshotter = "overlayfs"
  [containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [containerd.runtimes.runc.options]
      BinaryName = "/usr/bin/runc"
      SystemdCgroup = true
  [containerd.runtimes.kata]
    runtime_type = "io.containerd.kata.v2"
    privileged_without_host_devices = true
[cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
[registry]
  config_path = "/etc/containerd/certs.d"
  [registry.mirrors."docker.io"]
    endpoint = ["https://registry-1.docker.io"]
)",
                 &warnings);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->sandbox_image, "registry.k8s.io/pause:3.9");
  EXPECT_EQ(c->max_container_log_line_size, -1);
  EXPECT_TRUE(c->enable_unprivileged_ports);
  EXPECT_EQ(c->runtimes.size(), 2u);
  EXPECT_TRUE(c->runtimes.at("kata").privileged_without_host_devices);
  EXPECT_EQ(c->runtimes.at("runc").options["SystemdCgroup"].value<bool>(), true);
  EXPECT_EQ(c->registry_config_path, "/etc/containerd/certs.d");
  // Accepted but unused keys are named.
  bool mirrors = false;
  for (const auto& w : warnings) mirrors |= w.find("registry.mirrors") != std::string::npos;
  EXPECT_TRUE(mirrors);
}

TEST(CriConfigTest, UnknownKeysAreWarnedByName) {
  std::vector<std::string> warnings;
  auto c = Parse("pause_treshold = 3\n[cni]\nbin_dirr = \"/x\"\n", &warnings);
  ASSERT_TRUE(c);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("bin_dirr"), std::string::npos);
  EXPECT_NE(warnings[1].find("pause_treshold"), std::string::npos);
}

TEST(CriConfigTest, BadValuesNameTheKey) {
  auto a = Parse("sandbox_image = 3\n");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().What().find("sandbox_image must be a string"), std::string::npos);
  auto b = Parse("[containerd]\ndefault_runtime_name = \"nope\"\n");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().What().find("default_runtime_name = \"nope\""), std::string::npos);
  EXPECT_FALSE(Parse("[containerd]\ndefault_runtime_name = \"\"\n"));
  EXPECT_FALSE(Parse("stream_idle_timeout = \"forever\"\n"));
  EXPECT_FALSE(Parse("[cni]\nip_pref = \"ipv5\"\n"));
  EXPECT_FALSE(Parse("[containerd.runtimes]\nrunc = 3\n"));
}

}  // namespace
}  // namespace berth::cri
