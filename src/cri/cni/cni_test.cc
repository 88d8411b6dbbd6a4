// Cni against fake plugins: shell scripts that record their environment and stdin and answer
// what the test wrote for them.
#include "cri/cni/cni.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/fs.h"

namespace berth::cri::cni {
namespace {

using json = nlohmann::json;

std::string Slurp(const std::string& path) {
  auto s = fs::ReadFile(path);
  return s ? *s : std::string();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

constexpr std::string_view kLoResult =
    R"({"cniVersion":"0.3.1","interfaces":[{"name":"lo","mac":"00:00:00:00:00:00"}],
        "ips":[{"version":"4","interface":0,"address":"127.0.0.1/8"}],"dns":{}})";

class FakeCni : public testing::Test {
 protected:
  void SetUp() override {
    ::setenv("BERTH_CNI_TEST_MARK", "passed-through", 1);
    auto root = fs::TempDir::Create("berth-cni-fake-");
    ASSERT_TRUE(root);
    root_.emplace(std::move(*root));
    for (const char* d : {"/bin", "/bin2", "/log"}) {
      ASSERT_TRUE(fs::MkdirAll(root_->Path() + d, 0755));
    }
    Plugin("loopback");
    Answer("loopback", "ADD", kLoResult);
  }

  std::string Path(std::string_view rel) const { return root_->Path() + "/" + std::string(rel); }

  // A fake plugin named `type` in bin/ (or bin2/): it appends "<type> <command> <ifname>" to
  // log/calls, saves stdin and CNI_* env to log/<type>-<command>-<ifname>.{stdin,env}, then
  // prints log/<type>.<command>.out and log/<type>.<command>.err, exiting with
  // log/<type>.<command>.exit (default 0).
  void Plugin(const std::string& type, const std::string& dir = "bin") {
    std::string log = Path("log");
    std::string script =
        "#!/bin/sh\n"
        "l=" +
        log + "\nt=" + type + "\n" +
        R"SH(k="$t-$CNI_COMMAND-$CNI_IFNAME"
cat > "$l/$k.stdin"
env | grep -E '^(CNI_|BERTH_CNI_TEST_MARK=)' | sort > "$l/$k.env"
echo "$t $CNI_COMMAND $CNI_IFNAME" >> "$l/calls"
[ -f "$l/$t.$CNI_COMMAND.sleep" ] && sleep "$(cat "$l/$t.$CNI_COMMAND.sleep")"
[ -f "$l/$t.$CNI_COMMAND.out" ] && cat "$l/$t.$CNI_COMMAND.out"
[ -f "$l/$t.$CNI_COMMAND.err" ] && cat "$l/$t.$CNI_COMMAND.err" >&2
[ -f "$l/$t.$CNI_COMMAND.exit" ] && exit "$(cat "$l/$t.$CNI_COMMAND.exit")"
exit 0
)SH";
    std::string path = Path(dir + "/" + type);
    std::ofstream(path) << script;
    ::chmod(path.c_str(), 0755);
  }

  void Answer(const std::string& type, const std::string& cmd, std::string_view out,
              int exit_code = 0, std::string_view err = "") {
    std::ofstream(Path("log/" + type + "." + cmd + ".out")) << out;
    if (exit_code != 0) std::ofstream(Path("log/" + type + "." + cmd + ".exit")) << exit_code;
    if (!err.empty()) std::ofstream(Path("log/" + type + "." + cmd + ".err")) << err;
  }

  void Conf(const std::string& name, std::string_view content) {
    ASSERT_TRUE(fs::MkdirAll(Path("conf"), 0755));
    std::ofstream(Path("conf/" + name)) << content;
  }

  std::unique_ptr<Cni> New(int max_conf_num = 1, std::string ip_pref = "") {
    auto c = Cni::New(Config{.bin_dirs = {Path("bin"), Path("bin2")},
                             .conf_dir = Path("conf"),
                             .max_conf_num = max_conf_num,
                             .cache_dir = Path("cache"),
                             .ip_pref = std::move(ip_pref)});
    EXPECT_TRUE(c) << c.error().ToString();
    return c ? std::move(*c) : nullptr;
  }

  json Stdin(const std::string& type, const std::string& cmd, const std::string& ifname) {
    return json::parse(Slurp(Path("log/" + type + "-" + cmd + "-" + ifname + ".stdin")), nullptr,
                       false);
  }

  std::map<std::string, std::string> Env(const std::string& type, const std::string& cmd,
                                         const std::string& ifname) {
    std::map<std::string, std::string> env;
    for (const auto& line : Lines(Slurp(Path("log/" + type + "-" + cmd + "-" + ifname + ".env")))) {
      auto eq = line.find('=');
      if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return env;
  }

  std::vector<std::string> Calls() { return Lines(Slurp(Path("log/calls"))); }
  void ClearCalls() { ::unlink(Path("log/calls").c_str()); }

  PodNetwork Pod() {
    return PodNetwork{
        .id = "0123abcd",
        .netns = "/var/run/netns/cni-test",
        .name = "web",
        .ns = "default",
        .uid = "uid-1",
        .port_mappings = {{.protocol = "TCP", .host_port = 8080, .container_port = 80},
                          {.protocol = "udp", .host_port = 0, .container_port = 53}},
        .dns = Dns{.servers = {"10.0.0.10"}, .searches = {"svc"}, .options = {}},
        .annotations = {{"kubernetes.io/ingress-bandwidth", "1M"}, {"a", "b"}}};
  }

  std::optional<fs::TempDir> root_;
};

constexpr std::string_view kTwoPluginList = R"({"cniVersion":"1.0.0","name":"net","plugins":[
  {"type":"first","capabilities":{"portMappings":true,"dns":false}},
  {"type":"second","capabilities":{"bandwidth":true,"io.kubernetes.cri.pod-annotations":true}}]})";

constexpr std::string_view kFirstResult = R"({"cniVersion":"1.0.0",
  "interfaces":[{"name":"cni0","mac":"aa:aa:aa:aa:aa:aa"},
                {"name":"eth0","mac":"bb:bb:bb:bb:bb:bb","sandbox":"/var/run/netns/cni-test"}],
  "ips":[{"address":"10.22.0.1/24","interface":0},
         {"address":"10.22.0.5/24","gateway":"10.22.0.1","interface":1}],
  "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.22.0.1"]}})";

TEST_F(FakeCni, NotReadyUntilAConfigAppears) {
  auto cni = New();
  ASSERT_TRUE(cni);
  struct stat st {};
  ASSERT_EQ(::stat(Path("conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  Status ready = cni->Ready();
  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().ToString(), "cni plugin not initialized");
  EXPECT_EQ(cni->LoadStatus(), "cni config load failed: no network config found in " +
                                   Path("conf") +
                                   ": cni plugin not initialized: failed to load cni config");
  auto setup = cni->Setup(Pod());
  ASSERT_FALSE(setup);
  EXPECT_EQ(setup.error().What(), "cni plugin not initialized");
  EXPECT_EQ(cni->Remove(Pod()).error().What(), "cni plugin not initialized");

  Conf("10-net.conflist", kTwoPluginList);
  EXPECT_TRUE(cni->Ready());
  EXPECT_EQ(cni->LoadStatus(), "OK");

  Conf("10-net.conflist", "{ half written");
  EXPECT_FALSE(cni->Ready());
  EXPECT_NE(cni->LoadStatus().find("failed to load CNI config list file " + Path("conf") +
                                   "/10-net.conflist"),
            std::string::npos)
      << cni->LoadStatus();
  EXPECT_NE(cni->LoadStatus().find("invalid cni config: failed to load cni config"),
            std::string::npos);

  Conf("10-net.conflist", kTwoPluginList);
  EXPECT_TRUE(cni->Ready());
  ASSERT_EQ(::unlink(Path("conf/10-net.conflist").c_str()), 0);
  EXPECT_FALSE(cni->Ready());
  // A file renamed into the directory counts too.
  std::ofstream(Path("staged.conflist")) << kTwoPluginList;
  ASSERT_EQ(::rename(Path("staged.conflist").c_str(), Path("conf/99-x.conflist").c_str()), 0);
  EXPECT_TRUE(cni->Ready());
  EXPECT_TRUE(cni->Reload());
}

TEST_F(FakeCni, SortingMaxConfNumAndConfWrapping) {
  Conf("20-b.conflist", R"({"cniVersion":"1.0.0","name":"b","plugins":[{"type":"first"}]})");
  Conf("10-a.conf", R"({"cniVersion":"0.4.0","name":"a","type":"first","mtu":1400})");
  Conf("30-c.json", R"({"cniVersion":"0.3.1","name":"c","type":"second"})");
  Conf("05-ignored.txt", "not a config");
  ASSERT_TRUE(fs::MkdirAll(Path("conf/15-dir.conf"), 0755));

  auto one = New(1);
  ASSERT_TRUE(one && one->Ready());
  json cfg = one->ConfigJson();
  ASSERT_EQ(cfg["Networks"].size(), 2u) << cfg.dump();
  EXPECT_EQ(cfg["Networks"][0]["IFName"], "lo");
  EXPECT_EQ(cfg["Networks"][0]["Config"]["Name"], "cni-loopback");
  EXPECT_EQ(cfg["Networks"][1]["IFName"], "eth0");
  EXPECT_EQ(cfg["Networks"][1]["Config"]["Name"], "a");
  EXPECT_EQ(cfg["Networks"][1]["Config"]["CNIVersion"], "0.4.0");
  EXPECT_EQ(json::parse(cfg["Networks"][1]["Config"]["Source"].get<std::string>()),
            json::parse(R"({"cniVersion":"0.4.0","name":"a","plugins":[
                {"cniVersion":"0.4.0","name":"a","type":"first","mtu":1400}]})"));
  EXPECT_EQ(cfg["PluginMaxConfNum"], 1);
  EXPECT_EQ(cfg["PluginConfDir"], Path("conf"));

  auto all = New(0);
  ASSERT_TRUE(all);
  cfg = all->ConfigJson();
  ASSERT_EQ(cfg["Networks"].size(), 4u) << cfg.dump();
  std::vector<std::string> names, ifnames;
  for (const auto& n : cfg["Networks"]) {
    names.push_back(n["Config"]["Name"]);
    ifnames.push_back(n["IFName"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"cni-loopback", "a", "b", "c"}));
  EXPECT_EQ(ifnames, (std::vector<std::string>{"lo", "eth0", "eth1", "eth2"}));

  // A .conf without "type" fails the load.
  Conf("01-bad.conf", R"({"cniVersion":"0.4.0","name":"bad"})");
  EXPECT_FALSE(all->Ready());
  EXPECT_NE(all->LoadStatus().find("failed to load CNI config file " + Path("conf/01-bad.conf") +
                                   ": error parsing configuration: missing 'type'"),
            std::string::npos)
      << all->LoadStatus();
}

TEST_F(FakeCni, SetupEnvStdinCapabilitiesAndChaining) {
  Plugin("first");
  Plugin("second", "bin2");
  Conf("10-net.conflist", kTwoPluginList);
  Answer("first", "ADD", kFirstResult);
  // The second plugin passes the result through, minus its cniVersion (libcni fills it in).
  json second = json::parse(kFirstResult);
  second.erase("cniVersion");
  Answer("second", "ADD", second.dump());
  auto cni = New();
  ASSERT_TRUE(cni);
  auto res = cni->Setup(Pod());
  ASSERT_TRUE(res) << res.error().ToString();

  auto env = Env("first", "ADD", "eth0");
  EXPECT_EQ(env["CNI_COMMAND"], "ADD");
  EXPECT_EQ(env["CNI_CONTAINERID"], "0123abcd");
  EXPECT_EQ(env["CNI_NETNS"], "/var/run/netns/cni-test");
  EXPECT_EQ(env["CNI_IFNAME"], "eth0");
  EXPECT_EQ(env["CNI_PATH"], Path("bin") + ":" + Path("bin2"));
  EXPECT_EQ(env["BERTH_CNI_TEST_MARK"], "passed-through");
  std::set<std::string> args;
  std::stringstream ss(env["CNI_ARGS"]);
  for (std::string kv; std::getline(ss, kv, ';');) args.insert(kv);
  EXPECT_EQ(args, (std::set<std::string>{"IgnoreUnknown=1", "K8S_POD_NAMESPACE=default",
                                         "K8S_POD_NAME=web", "K8S_POD_INFRA_CONTAINER_ID=0123abcd",
                                         "K8S_POD_UID=uid-1"}));
  EXPECT_EQ(Env("loopback", "ADD", "lo")["CNI_IFNAME"], "lo");

  json first_in = Stdin("first", "ADD", "eth0");
  ASSERT_FALSE(first_in.is_discarded());
  EXPECT_EQ(first_in["name"], "net");
  EXPECT_EQ(first_in["cniVersion"], "1.0.0");
  EXPECT_FALSE(first_in.contains("prevResult"));
  EXPECT_EQ(first_in["runtimeConfig"], json::parse(R"({"portMappings":[
      {"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]})"));

  json second_in = Stdin("second", "ADD", "eth0");
  EXPECT_EQ(second_in["prevResult"], json::parse(kFirstResult));
  EXPECT_EQ(second_in["runtimeConfig"], json::parse(R"({
      "bandwidth":{"ingressRate":1000000,"ingressBurst":4294967295,"egressRate":0,"egressBurst":0},
      "io.kubernetes.cri.pod-annotations":{"a":"b","kubernetes.io/ingress-bandwidth":"1M"}})"));

  json lo_in = Stdin("loopback", "ADD", "lo");
  EXPECT_EQ(lo_in, json::parse(R"({"cniVersion":"0.3.1","name":"cni-loopback",
                                   "type":"loopback"})"));

  EXPECT_EQ(res->ip, "10.22.0.5");
  EXPECT_TRUE(res->additional_ips.empty());
  EXPECT_EQ(res->interfaces["eth0"].mac, "bb:bb:bb:bb:bb:bb");
  ASSERT_EQ(res->interfaces["eth0"].ip_configs.size(), 1u);
  EXPECT_EQ(res->interfaces["eth0"].ip_configs[0].gateway, "10.22.0.1");
  ASSERT_EQ(res->interfaces["cni0"].ip_configs.size(), 1u);
  ASSERT_EQ(res->interfaces["lo"].ip_configs.size(), 1u);
  EXPECT_EQ(res->interfaces["lo"].ip_configs[0].ip, "127.0.0.1");
  ASSERT_EQ(res->networks.size(), 2u);
  EXPECT_EQ(res->networks[0].network, "cni-loopback");
  EXPECT_EQ(res->networks[0].raw["cniVersion"], "1.0.0");
  EXPECT_FALSE(res->networks[0].raw["ips"][0].contains("version"));
  EXPECT_EQ(res->networks[1].ifname, "eth0");
  json persisted = res->ToJson();
  EXPECT_EQ(persisted["Interfaces"]["eth0"]["IPConfigs"][0]["IP"], "10.22.0.5");
  EXPECT_EQ(persisted["Routes"], json::parse(R"([{"dst":"0.0.0.0/0"}])"));
  EXPECT_EQ(persisted["DNS"].size(), 2u);

  // The cache holds libcni's cniCacheV1 record of the final result.
  json cached = json::parse(Slurp(Path("cache/results/net-0123abcd-eth0")), nullptr, false);
  ASSERT_FALSE(cached.is_discarded());
  EXPECT_EQ(cached["kind"], "cniCacheV1");
  EXPECT_EQ(cached["containerId"], "0123abcd");
  EXPECT_EQ(cached["ifName"], "eth0");
  EXPECT_EQ(cached["networkName"], "net");
  EXPECT_EQ(cached["result"], json::parse(kFirstResult));
  EXPECT_EQ(cached["cniArgs"][0], json::parse(R"(["IgnoreUnknown","1"])"));
  EXPECT_EQ(cached["capabilityArgs"]["dns"]["servers"][0], "10.0.0.10");
  std::string b64 = cached["config"];
  EXPECT_FALSE(b64.empty());
  EXPECT_EQ(b64.size() % 4, 0u);
  EXPECT_TRUE(json::parse(Slurp(Path("cache/results/cni-loopback-0123abcd-lo")), nullptr, false)
                  .is_object());
}

TEST_F(FakeCni, RemoveOrderPrevResultAndCache) {
  Plugin("first");
  Plugin("second");
  Conf("10-net.conflist", kTwoPluginList);
  Answer("first", "ADD", kFirstResult);
  Answer("second", "ADD", kFirstResult);
  auto cni = New();
  ASSERT_TRUE(cni);
  ASSERT_TRUE(cni->Setup(Pod()));
  ClearCalls();
  Status removed = cni->Remove(Pod());
  ASSERT_TRUE(removed) << removed.error().ToString();
  EXPECT_EQ(Calls(),
            (std::vector<std::string>{"loopback DEL lo", "second DEL eth0", "first DEL eth0"}));
  json del = Stdin("first", "DEL", "eth0");
  EXPECT_EQ(del["prevResult"], json::parse(kFirstResult));
  EXPECT_EQ(del["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
  EXPECT_EQ(Env("second", "DEL", "eth0")["CNI_COMMAND"], "DEL");
  // 0.3.1 predates cached results on DEL.
  EXPECT_FALSE(Stdin("loopback", "DEL", "lo").contains("prevResult"));
  EXPECT_NE(::access(Path("cache/results/net-0123abcd-eth0").c_str(), F_OK), 0);
  EXPECT_NE(::access(Path("cache/results/cni-loopback-0123abcd-lo").c_str(), F_OK), 0);
}

TEST_F(FakeCni, CachedResultIsConvertedToTheListVersion) {
  Plugin("first");
  Conf("10-net.conflist", R"({"cniVersion":"0.4.0","name":"net","plugins":[{"type":"first"}]})");
  Answer("first", "ADD", kFirstResult);  // a 1.0.0 answer to a 0.4.0 config
  auto cni = New();
  ASSERT_TRUE(cni);
  ASSERT_TRUE(cni->Setup(Pod()));
  ASSERT_TRUE(cni->Remove(Pod()));
  json prev = Stdin("first", "DEL", "eth0")["prevResult"];
  EXPECT_EQ(prev["cniVersion"], "0.4.0");
  EXPECT_EQ(prev["ips"][1]["version"], "4");
  EXPECT_EQ(prev["ips"][1]["address"], "10.22.0.5/24");
}

TEST_F(FakeCni, ResultVersionsAndIpsWithoutInterface) {
  Plugin("first");
  Conf("10-net.conflist", R"({"cniVersion":"0.3.0","name":"net","plugins":[{"type":"first"}]})");
  struct Case {
    const char* result;
    std::string ip;
    std::vector<std::string> extra;
  };
  const Case cases[] = {
      {R"({"cniVersion":"0.2.0","ip4":{"ip":"10.9.0.2/24"},"ip6":{"ip":"fd09::2/64"}})",
       "10.9.0.2",
       {"fd09::2"}},
      {R"({"ips":[{"version":"6","address":"fd09::3/64"},{"version":"4","address":"10.9.0.3/24"}]})",
       "10.9.0.3",
       {"fd09::3"}},
      {R"({"cniVersion":"0.3.1","interfaces":[{"name":"eth0"}],
           "ips":[{"version":"4","address":"10.9.0.4/24","interface":0}]})",
       "10.9.0.4",
       {}},
      {R"({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.9.0.5/24"}]})", "10.9.0.5", {}},
      {R"({"cniVersion":"1.0.0","ips":[{"address":"10.9.0.6/24"},{"address":"10.9.0.7/24"}]})",
       "10.9.0.6",
       {"10.9.0.7"}},
  };
  auto cni = New();
  ASSERT_TRUE(cni);
  for (const auto& c : cases) {
    Answer("first", "ADD", c.result);
    auto res = cni->Setup(Pod());
    ASSERT_TRUE(res) << c.result << ": " << res.error().ToString();
    EXPECT_EQ(res->ip, c.ip) << c.result;
    EXPECT_EQ(res->additional_ips, c.extra) << c.result;
    EXPECT_EQ(res->networks[1].raw["cniVersion"], "1.0.0");
  }
}

TEST_F(FakeCni, IpPreference) {
  std::vector<IpInfo> ips = {{.ip = "fd00::1"}, {.ip = "10.0.0.1"}, {.ip = "10.0.0.2"}};
  using V = std::vector<std::string>;
  EXPECT_EQ(SelectPodIps(ips, ""),
            std::make_pair(std::string("10.0.0.1"), V{"fd00::1", "10.0.0.2"}));
  EXPECT_EQ(SelectPodIps(ips, "ipv4"), SelectPodIps(ips, ""));
  EXPECT_EQ(SelectPodIps(ips, "bogus"), SelectPodIps(ips, ""));
  EXPECT_EQ(SelectPodIps(ips, "ipv6"),
            std::make_pair(std::string("fd00::1"), V{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(SelectPodIps(ips, "cni"), SelectPodIps(ips, "ipv6"));
  EXPECT_EQ(SelectPodIps({{.ip = "fd00::1"}, {.ip = "fd00::2"}}, "ipv4"),
            std::make_pair(std::string("fd00::1"), V{"fd00::2"}));

  Plugin("first");
  Conf("10-net.conflist", R"({"cniVersion":"1.0.0","name":"net","plugins":[{"type":"first"}]})");
  Answer("first", "ADD", R"({"cniVersion":"1.0.0","ips":[{"address":"fd00::9/64"},
                                                          {"address":"10.0.0.9/24"}]})");
  auto v6 = New(1, "ipv6");
  ASSERT_TRUE(v6);
  auto res = v6->Setup(Pod());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->ip, "fd00::9");
  EXPECT_EQ(res->additional_ips, V{"10.0.0.9"});
}

TEST_F(FakeCni, NoIpOnEth0IsAnError) {
  Plugin("first");
  Conf("10-net.conflist", R"({"cniVersion":"1.0.0","name":"net","plugins":[{"type":"first"}]})");
  Answer("first", "ADD", R"({"cniVersion":"1.0.0","interfaces":[{"name":"cni0"}],
                             "ips":[{"address":"10.0.0.1/24","interface":0}]})");
  auto cni = New();
  ASSERT_TRUE(cni);
  auto res = cni->Setup(Pod());
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().ToString(), "failed to find network info for sandbox \"0123abcd\"");
}

TEST_F(FakeCni, PluginErrors) {
  Plugin("first");
  Plugin("second");
  Conf("10-net.conflist", kTwoPluginList);
  Answer("first", "ADD", R"({"cniVersion":"1.0.0","code":7,"msg":"bad bridge","details":"x"})", 1);
  auto cni = New();
  ASSERT_TRUE(cni);
  auto res = cni->Setup(Pod());
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().ToString(),
            "plugin type=\"first\" name=\"net\" failed (add): bad bridge; x");
  for (const auto& call : Calls()) EXPECT_EQ(call.find("second"), std::string::npos) << call;

  ::unlink(Path("log/first.ADD.out").c_str());
  std::ofstream(Path("log/first.ADD.err")) << "segfault\n";
  res = cni->Setup(Pod());
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().ToString(),
            "plugin type=\"first\" name=\"net\" failed (add): netplugin failed: \"segfault\\n\"");

  Conf("10-net.conflist", R"({"cniVersion":"1.0.0","name":"net","plugins":[{"type":"nope"}]})");
  res = cni->Setup(Pod());
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().ToString(),
            "plugin type=\"nope\" name=\"net\" failed (add): failed to find plugin \"nope\" in "
            "path [" +
                Path("bin") + " " + Path("bin2") + "]");

  Plugin("slow");
  Conf("10-net.conflist", R"({"cniVersion":"1.0.0","name":"net","plugins":[{"type":"slow"}]})");
  std::ofstream(Path("log/slow.ADD.sleep")) << "30";
  auto quick = Cni::New(Config{.bin_dirs = {Path("bin")},
                               .conf_dir = Path("conf"),
                               .cache_dir = Path("cache"),
                               .plugin_timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(quick);
  res = (*quick)->Setup(Pod());
  ASSERT_FALSE(res);
  EXPECT_TRUE(res.error().Is(Errc::kDeadlineExceeded)) << res.error().ToString();
}

TEST_F(FakeCni, RemoveIgnoresNotFound) {
  Plugin("first");
  Conf("10-net.conflist", R"({"cniVersion":"1.0.0","name":"net","plugins":[{"type":"first"}]})");
  auto cni = New();
  ASSERT_TRUE(cni);
  Answer("first", "DEL", R"({"code":3,"msg":"container not found"})", 1);
  EXPECT_TRUE(cni->Remove(Pod()));

  Answer("first", "DEL", R"({"code":5,"msg":"open /x: no such file or directory"})", 1);
  auto closed = Pod();
  closed.netns = "";
  EXPECT_TRUE(cni->Remove(closed));
  Status st = cni->Remove(Pod());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().ToString(),
            "plugin type=\"first\" name=\"net\" failed (delete): open /x: no such file or "
            "directory");
}

TEST(Pod, QuantitiesAndBandwidth) {
  EXPECT_EQ(*ParseQuantity("1M"), 1000000);
  EXPECT_EQ(*ParseQuantity("10Mi"), 10 * 1024 * 1024);
  EXPECT_EQ(*ParseQuantity("1.5k"), 1500);
  EXPECT_EQ(*ParseQuantity("1e6"), 1000000);
  EXPECT_EQ(*ParseQuantity("100m"), 1);  // rounded up
  EXPECT_FALSE(ParseQuantity("abc"));
  EXPECT_FALSE(ParseQuantity("1Q"));
  EXPECT_FALSE(ParseQuantity(""));
  EXPECT_FALSE(ParseQuantity("0e9999"));

  auto none = BandwidthFromAnnotations({{"x", "y"}});
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  auto bw = BandwidthFromAnnotations(
      {{"kubernetes.io/ingress-bandwidth", "10M"}, {"kubernetes.io/egress-bandwidth", "1Gi"}});
  ASSERT_TRUE(bw && bw->has_value());
  EXPECT_EQ((*bw)->ingress_rate, 10000000u);
  EXPECT_EQ((*bw)->egress_rate, 1073741824u);
  EXPECT_EQ((*bw)->ingress_burst, 4294967295u);
  auto small = BandwidthFromAnnotations({{"kubernetes.io/egress-bandwidth", "100"}});
  ASSERT_FALSE(small);
  EXPECT_NE(small.error().What().find("unreasonably small"), std::string::npos);
  EXPECT_FALSE(BandwidthFromAnnotations({{"kubernetes.io/egress-bandwidth", "2P"}}));
  EXPECT_FALSE(BandwidthFromAnnotations({{"kubernetes.io/egress-bandwidth", "fast"}}));

  PodNetwork pod{.id = "x", .bandwidth = Bandwidth{.egress_rate = 5, .egress_burst = 6}};
  pod.annotations["kubernetes.io/egress-bandwidth"] = "fast";  // an explicit value wins
  auto caps = CapabilityArgs(pod);
  ASSERT_TRUE(caps);
  EXPECT_EQ((*caps)["bandwidth"]["egressRate"], 5);
  EXPECT_FALSE(caps->contains("portMappings"));
  EXPECT_FALSE(caps->contains("dns"));
  EXPECT_TRUE(caps->contains("io.kubernetes.cri.pod-annotations"));
}

}  // namespace
}  // namespace berth::cri::cni
