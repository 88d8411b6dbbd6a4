#include "cri/cni/result.h"

#include <gtest/gtest.h>

#include "cri/cni/conf.h"
#include "cri/cni/invoke.h"

namespace berth::cri::cni {
namespace {

using json = nlohmann::json;

TEST(ParseResult, Version100) {
  auto r = ParseResult(json::parse(R"({
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                   {"name": "eth0", "mac": "11:22:33:44:55:66", "sandbox": "/run/netns/x"}],
    "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"address": "fd00::5/64"}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
    "dns": {"nameservers": ["10.1.0.1"], "domain": "cluster.local", "search": ["a"],
            "options": ["ndots:5"]}})"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->cni_version, "1.0.0");
  ASSERT_EQ(r->interfaces.size(), 2u);
  EXPECT_EQ(r->interfaces[1].sandbox, "/run/netns/x");
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].interface, 1);
  EXPECT_EQ(r->ips[0].gateway, "10.1.0.1");
  EXPECT_FALSE(r->ips[1].interface.has_value());
  ASSERT_EQ(r->routes.size(), 1u);
  EXPECT_EQ(r->routes[0].gw, "10.1.0.1");
  EXPECT_EQ(r->dns.domain, "cluster.local");
  EXPECT_EQ(r->dns.options, std::vector<std::string>{"ndots:5"});
}

TEST(ParseResult, Versions03And04CarryIpVersion) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0"}) {
    json doc = json::parse(R"({"interfaces":[{"name":"eth0"}],
      "ips":[{"version":"4","address":"10.2.0.7/24","interface":0}]})");
    doc["cniVersion"] = v;
    auto r = ParseResult(doc);
    ASSERT_TRUE(r) << v << ": " << r.error().ToString();
    ASSERT_EQ(r->ips.size(), 1u);
    EXPECT_EQ(r->ips[0].address, "10.2.0.7/24");
    EXPECT_EQ(r->ips[0].interface, 0);
  }
}

TEST(ParseResult, Legacy020) {
  auto r = ParseResult(json::parse(R"({"cniVersion":"0.2.0",
    "ip4":{"ip":"10.3.0.2/24","gateway":"10.3.0.1","routes":[{"dst":"0.0.0.0/0"}]},
    "ip6":{"ip":"fd01::2/64"}, "dns":{"nameservers":["1.1.1.1"]}})"));
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].address, "10.3.0.2/24");
  EXPECT_EQ(r->ips[1].address, "fd01::2/64");
  EXPECT_EQ(r->routes.size(), 1u);
  EXPECT_EQ(r->dns.nameservers, std::vector<std::string>{"1.1.1.1"});
}

TEST(ParseResult, Errors) {
  auto bad_version = ParseResult(json::parse(R"({"cniVersion":"9.9.9"})"));
  ASSERT_FALSE(bad_version);
  EXPECT_EQ(bad_version.error().What(), "unsupported CNI result version \"9.9.9\"");
  auto bad_ip =
      ParseResult(json::parse(R"({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1"}]})"));
  ASSERT_FALSE(bad_ip);
  EXPECT_EQ(bad_ip.error().What(), "invalid CIDR address: 10.0.0.1");
  auto bad_index = ParseResult(json::parse(
      R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],
          "ips":[{"address":"10.0.0.1/8","interface":1}]})"));
  ASSERT_FALSE(bad_index);
  EXPECT_NE(bad_index.error().What().find("invalid result"), std::string::npos);
  EXPECT_FALSE(ParseResult(json::parse(R"({"cniVersion":"1.0.0","ips":"x"})")));
  EXPECT_FALSE(ParseResult(json::parse("[]")));
}

TEST(ResultToJson, ConvertsBetweenVersions) {
  auto r = ParseResult(json::parse(R"({"cniVersion":"0.4.0","interfaces":[{"name":"eth0"}],
    "ips":[{"version":"4","address":"10.2.0.7/24","gateway":"10.2.0.1","interface":0},
           {"version":"6","address":"fd00::7/64"}]})"));
  ASSERT_TRUE(r);
  auto v1 = ResultToJson(*r, "1.0.0");
  ASSERT_TRUE(v1);
  EXPECT_EQ(*v1, json::parse(R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],
    "ips":[{"address":"10.2.0.7/24","gateway":"10.2.0.1","interface":0},
           {"address":"fd00::7/64"}],"dns":{}})"));
  auto v04 = ResultToJson(*r, "0.4.0");
  ASSERT_TRUE(v04);
  EXPECT_EQ((*v04)["ips"][0]["version"], "4");
  EXPECT_EQ((*v04)["ips"][1]["version"], "6");
  EXPECT_FALSE(ResultToJson(*r, "0.2.0"));
}

TEST(Versions, CompareAndIps) {
  EXPECT_EQ(*CompareVersions("0.4.0", "0.4.0"), 0);
  EXPECT_EQ(*CompareVersions("1.0.0", "0.4.0"), 1);
  EXPECT_EQ(*CompareVersions("0.3.1", "0.4.0"), -1);
  EXPECT_EQ(*CompareVersions("0.10.0", "0.4.0"), 1);
  EXPECT_FALSE(CompareVersions("", "0.4.0"));
  EXPECT_FALSE(CompareVersions("x.1", "0.4.0"));
  EXPECT_EQ(CanonicalIp("10.0.0.1/24"), "10.0.0.1");
  EXPECT_EQ(CanonicalIp("fd00:0:0::1/64"), "fd00::1");
  EXPECT_EQ(CanonicalIp("::ffff:10.0.0.1"), "10.0.0.1");
  EXPECT_FALSE(CanonicalIp("nope"));
  EXPECT_TRUE(IsIpv4("10.0.0.1/8"));
  EXPECT_TRUE(IsIpv4("::ffff:10.0.0.1"));
  EXPECT_FALSE(IsIpv4("fd00::1/64"));
  EXPECT_TRUE(IsCidr("fd00::/8"));
  EXPECT_FALSE(IsCidr("10.0.0.0/33"));
  EXPECT_FALSE(IsCidr("10.0.0.0/"));
}

TEST(ConfList, ParseAndWrap) {
  using internal::ConfListFromBytes;
  using internal::ConfListFromConfBytes;
  auto list = ConfListFromBytes(R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]})");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->name, "n");
  EXPECT_EQ(list->cni_version, "1.0.0");
  ASSERT_EQ(list->plugins.size(), 1u);

  EXPECT_EQ(ConfListFromBytes(R"({"plugins":[{"type":"a"}]})").error().What(),
            "error parsing configuration list: no name");
  EXPECT_EQ(ConfListFromBytes(R"({"name":"n","plugins":[]})").error().What(),
            "error parsing configuration list: no plugins in list");
  EXPECT_EQ(ConfListFromBytes(R"({"name":"n"})").error().What(),
            "error parsing configuration list: no 'plugins' key");
  EXPECT_EQ(ConfListFromBytes(R"({"name":"n","plugins":[{"x":1}]})").error().What(),
            "failed to parse plugin config 0: error parsing configuration: missing 'type'");
  EXPECT_FALSE(ConfListFromBytes("{nope"));

  auto wrapped = ConfListFromConfBytes(R"({"cniVersion":"0.4.0","name":"single","type":"bridge",
                                           "bridge":"br0"})");
  ASSERT_TRUE(wrapped) << wrapped.error().ToString();
  EXPECT_EQ(wrapped->name, "single");
  EXPECT_EQ(wrapped->cni_version, "0.4.0");
  EXPECT_EQ(json::parse(wrapped->bytes),
            json::parse(R"({"cniVersion":"0.4.0","name":"single","plugins":[
              {"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"br0"}]})"));
  EXPECT_EQ(ConfListFromConfBytes(R"({"name":"x"})").error().What(),
            "error parsing configuration: missing 'type'");
}

TEST(Invoke, BuildOneConfigFiltersCapabilities) {
  auto list = internal::ConfListFromBytes(R"({"cniVersion":"1.0.0","name":"net","plugins":[
      {"type":"p","capabilities":{"portMappings":true,"dns":false,"bandwidth":true}}]})");
  ASSERT_TRUE(list);
  internal::RuntimeConf rt;
  rt.capability_args = json::parse(R"({"portMappings":[{"hostPort":1}],"dns":{"servers":[]},
                                       "io.kubernetes.cri.pod-annotations":{}})");
  json prev = json::parse(R"({"cniVersion":"1.0.0"})");
  json conf = internal::BuildOneConfig(*list, list->plugins[0], &prev, rt);
  EXPECT_EQ(conf["name"], "net");
  EXPECT_EQ(conf["cniVersion"], "1.0.0");
  EXPECT_EQ(conf["prevResult"], prev);
  EXPECT_EQ(conf["runtimeConfig"], json::parse(R"({"portMappings":[{"hostPort":1}]})"));
  EXPECT_TRUE(conf.contains("capabilities"));  // libcni leaves it in

  json none = internal::BuildOneConfig(*list, list->plugins[0], nullptr, internal::RuntimeConf{});
  EXPECT_FALSE(none.contains("runtimeConfig"));
  EXPECT_FALSE(none.contains("prevResult"));
}

TEST(Invoke, PluginErrorText) {
  using internal::PluginErrorText;
  EXPECT_EQ(PluginErrorText(1, R"({"code":7,"msg":"bad config","details":"field x"})", ""),
            "bad config; field x");
  EXPECT_EQ(PluginErrorText(1, R"({"cniVersion":"1.0.0","code":3,"msg":"gone"})", "noise"), "gone");
  EXPECT_EQ(PluginErrorText(2, "", "boom\n"), "netplugin failed: \"boom\\n\"");
  EXPECT_EQ(PluginErrorText(3, "", ""), "netplugin failed with no error message: exit status 3");
  EXPECT_EQ(PluginErrorText(1, "oops", ""),
            "netplugin failed but error parsing its diagnostic message \"oops\": invalid JSON");
}

}  // namespace
}  // namespace berth::cri::cni
