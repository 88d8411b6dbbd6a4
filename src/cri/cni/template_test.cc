#include "cri/cni/template.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace berth::cri::cni {
namespace {

using json = nlohmann::json;

// The template of containerd's docs/cri/config.md (dual-stack ranges and routes).
constexpr std::string_view kDocTemplate = R"({
  "name": "containerd-net",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "promiscMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [
          {{- range $i, $range := .PodCIDRRanges}}
          {{- if $i }},{{end}}
          [{
            "subnet": "{{$range}}"
          }]
          {{- end}}
        ],
        "routes": [
          {{- range $i, $route := .Routes}}
          {{- if $i }},{{end}}
          { "dst": "{{$route}}" }
          {{- end}}
        ]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    }
  ]
})";

TemplateData Data(std::vector<std::string> cidrs) {
  auto d = TemplateDataFromCidrs(cidrs);
  EXPECT_TRUE(d) << d.error().ToString();
  return d ? *d : TemplateData{};
}

TEST(Template, DataFromCidrs) {
  auto d = Data({" 10.88.0.0/16", "fd00:1::/64 "});
  EXPECT_EQ(d.pod_cidr, "10.88.0.0/16");
  EXPECT_EQ(d.pod_cidr_ranges, (std::vector<std::string>{"10.88.0.0/16", "fd00:1::/64"}));
  EXPECT_EQ(d.routes, (std::vector<std::string>{"0.0.0.0/0", "::/0"}));
  EXPECT_EQ(Data({"fd00::/64"}).routes, std::vector<std::string>{"::/0"});
  auto bad = TemplateDataFromCidrs({"10.0.0.0"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().What(), "get routes: invalid CIDR address: 10.0.0.0");
  EXPECT_FALSE(TemplateDataFromCidrs({}));
}

TEST(Template, ContainerdDocTemplate) {
  auto out = RenderTemplate(kDocTemplate, Data({"10.88.0.0/16", "fd00:1::/64"}));
  ASSERT_TRUE(out) << out.error().ToString();
  json doc = json::parse(*out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << *out;
  EXPECT_EQ(doc["plugins"][0]["ipam"]["ranges"],
            json::parse(R"([[{"subnet":"10.88.0.0/16"}],[{"subnet":"fd00:1::/64"}]])"));
  EXPECT_EQ(doc["plugins"][0]["ipam"]["routes"],
            json::parse(R"([{"dst":"0.0.0.0/0"},{"dst":"::/0"}])"));
}

TEST(Template, SimpleForms) {
  auto d = Data({"10.1.0.0/24", "10.2.0.0/24"});
  EXPECT_EQ(*RenderTemplate(R"("subnet": "{{.PodCIDR}}")", d), R"("subnet": "10.1.0.0/24")");
  EXPECT_EQ(*RenderTemplate("{{range .Routes}}<{{.}}>{{end}}", d), "<0.0.0.0/0>");
  EXPECT_EQ(*RenderTemplate("{{.PodCIDRRanges}}", d), "[10.1.0.0/24 10.2.0.0/24]");
  EXPECT_EQ(*RenderTemplate("{{range $r := .PodCIDRRanges}}{{$r}};{{end}}", d),
            "10.1.0.0/24;10.2.0.0/24;");
  EXPECT_EQ(*RenderTemplate("{{$.PodCIDR}}", d), "10.1.0.0/24");
  EXPECT_EQ(*RenderTemplate("a  {{- /* note */ -}}  b", d), "ab");
  EXPECT_EQ(*RenderTemplate("x {{- .PodCIDR}}\n", d), "x10.1.0.0/24\n");
  EXPECT_EQ(*RenderTemplate("{{if .PodCIDR}}yes{{else}}no{{end}}", d), "yes");
  EXPECT_EQ(*RenderTemplate("{{range .Routes}}{{.}}{{else}}none{{end}}", TemplateData{}), "none");
  EXPECT_EQ(*RenderTemplate("{{if .Routes}}r{{else}}none{{end}}", TemplateData{}), "none");
  EXPECT_EQ(*RenderTemplate("{ no action }}", d), "{ no action }}");
}

TEST(Template, UnsupportedIsInvalidArgument) {
  auto d = Data({"10.1.0.0/24"});
  auto printf_ = RenderTemplate("a\n{{printf \"%s\" .PodCIDR}}", d);
  ASSERT_FALSE(printf_);
  EXPECT_TRUE(printf_.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(printf_.error().What().find("template line 2: unsupported action"), std::string::npos)
      << printf_.error().What();
  EXPECT_NE(printf_.error().What().find("printf"), std::string::npos);
  for (const char* t : {"{{.PodCIDR | len}}", "{{with .PodCIDR}}x{{end}}",
                        "{{define \"x\"}}{{end}}", "{{if .A}}x{{else if .B}}y{{end}}", "{{.Foo}}",
                        "{{range .PodCIDR}}{{end}}", "{{if .PodCIDR}}x", "{{end}}", "{{.PodCIDR",
                        "{{$nope}}", "{{range .Routes}}{{.Field}}{{end}}"}) {
    auto r = RenderTemplate(t, d);
    ASSERT_FALSE(r) << t;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << t;
  }
  EXPECT_NE(RenderTemplate("{{.Foo}}", d).error().What().find("can't evaluate field Foo"),
            std::string::npos);
  EXPECT_NE(RenderTemplate("{{if .PodCIDR}}x", d).error().What().find("missing {{end}}"),
            std::string::npos);
}

TEST(Template, WriteConfFromTemplate) {
  auto root = fs::TempDir::Create("berth-cni-tmpl-");
  ASSERT_TRUE(root);
  std::string tmpl = root->Path() + "/template.json";
  std::ofstream(tmpl) << kDocTemplate;
  std::string conf_dir = root->Path() + "/net.d";
  ASSERT_TRUE(WriteConfFromTemplate(tmpl, conf_dir, {"10.99.0.0/24"}));
  struct stat st {};
  ASSERT_EQ(::stat(conf_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  std::string file = conf_dir + "/10-containerd-net.conflist";
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  auto text = fs::ReadFile(file);
  ASSERT_TRUE(text);
  json doc = json::parse(*text, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.99.0.0/24");

  auto missing = WriteConfFromTemplate(root->Path() + "/nope", conf_dir, {"10.99.0.0/24"});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
  std::ofstream(tmpl) << "{{printf .PodCIDR}}";
  auto bad = WriteConfFromTemplate(tmpl, conf_dir, {"10.99.0.0/24"});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(bad.error().What().find(tmpl), std::string::npos);
}

}  // namespace
}  // namespace berth::cri::cni
