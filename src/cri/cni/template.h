#pragma once
// CNI configuration from conf_template at UpdateRuntimeConfig (containerd 1.6
// pkg/cri/server/update_runtime_config.go): a Go text/template rendered with the node's pod
// CIDRs.
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::cri::cni {

// The file containerd generates in conf_dir.
inline constexpr std::string_view kTemplateConfName = "10-containerd-net.conflist";

// The template's data (containerd's cniConfigTemplate).
struct TemplateData {
  std::string pod_cidr;                      // .PodCIDR: the first CIDR
  std::vector<std::string> pod_cidr_ranges;  // .PodCIDRRanges: all of them
  std::vector<std::string> routes;           // .Routes: 0.0.0.0/0 if any IPv4, ::/0 if any IPv6
};

// Builds the data from kubelet's pod CIDRs (already split at commas; blanks around each are
// trimmed). InvalidArgument "invalid CIDR address: <c>" for one that is not a CIDR, or when the
// list is empty.
Result<TemplateData> TemplateDataFromCidrs(const std::vector<std::string>& pod_cidrs);

// Renders `text` with the subset of Go's text/template that containerd's documented templates
// use: text, {{/* comments */}}, trim markers ({{- and -}}), {{.}}, {{.PodCIDR}},
// {{.PodCIDRRanges}}, {{.Routes}}, {{$}}, {{$var}}, {{if X}}...{{else}}...{{end}},
// {{range X}}...{{else}}...{{end}} with optional "$v :=" or "$i, $v :=". Values print as Go
// prints them (a list as "[a b]"); truth is Go's (empty string, empty list, 0 are false).
// InvalidArgument naming what is unsupported or malformed and its line ("template line 3:
// unsupported action \"printf \\\"%s\\\" .PodCIDR\"", "unknown field .Foo", "missing {{end}}").
Result<std::string> RenderTemplate(std::string_view text, const TemplateData& data);

// Reads the template at `template_path`, renders it with TemplateDataFromCidrs(pod_cidrs), and
// writes <conf_dir>/10-containerd-net.conflist (0644) atomically, creating conf_dir 0700 if
// missing. Errors: NotFound/... reading the template; InvalidArgument from the steps above,
// naming the template path.
Status WriteConfFromTemplate(const std::string& template_path, const std::string& conf_dir,
                             const std::vector<std::string>& pod_cidrs);

}  // namespace berth::cri::cni
