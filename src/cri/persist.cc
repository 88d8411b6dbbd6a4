#include "cri/persist.h"

#include <google/protobuf/util/json_util.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace berth::cri {
namespace {

using nlohmann::json;

json ProtoToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_enums_as_ints = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  auto j = json::parse(out, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

Status JsonToProto(const json& j, google::protobuf::Message* m, const char* what) {
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(j.dump(), m, o);
  if (!st.ok()) return InvalidArgument(fmt::format("{}: {}", what, st.ToString()));
  return Ok();
}

Result<json> Envelope(std::string_view text, const char* what) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(fmt::format("{}: not a JSON object", what));
  }
  if (j.value("Version", "") != "v1") {
    return InvalidArgument(fmt::format("{}: unsupported version {}", what, j.value("Version", "")));
  }
  auto m = j.find("Metadata");
  if (m == j.end() || !m->is_object()) return InvalidArgument(fmt::format("{}: no Metadata", what));
  return *m;
}

template <class T>
T Get(const json& j, const char* key, T def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return def;
  }
}

}  // namespace

std::string EncodeSandboxMetadata(const SandboxMetadata& m) {
  json md = {{"ID", m.id},
             {"Name", m.name},
             {"Config", ProtoToJson(m.config)},
             {"NetNSPath", m.netns_path},
             {"IP", m.ip},
             {"AdditionalIPs", m.additional_ips},
             {"RuntimeHandler", m.runtime_handler},
             {"CNIResult",
              m.cni_result.empty() ? json(nullptr) : json::parse(m.cni_result, nullptr, false)},
             {"ProcessLabel", ""}};
  return json{{"Version", "v1"}, {"Metadata", md}}.dump();
}

Result<SandboxMetadata> DecodeSandboxMetadata(std::string_view text) {
  BERTH_ASSIGN_OR_RETURN(json md, Envelope(text, "sandbox metadata"));
  SandboxMetadata m;
  m.id = Get<std::string>(md, "ID", "");
  m.name = Get<std::string>(md, "Name", "");
  if (auto c = md.find("Config"); c != md.end() && c->is_object()) {
    BERTH_TRY(JsonToProto(*c, &m.config, "sandbox metadata Config"));
  }
  m.netns_path = Get<std::string>(md, "NetNSPath", "");
  m.ip = Get<std::string>(md, "IP", "");
  m.additional_ips = Get<std::vector<std::string>>(md, "AdditionalIPs", {});
  m.runtime_handler = Get<std::string>(md, "RuntimeHandler", "");
  if (auto r = md.find("CNIResult"); r != md.end() && !r->is_null()) m.cni_result = r->dump();
  if (m.id.empty()) return InvalidArgument("sandbox metadata: no ID");
  return m;
}

std::string EncodeContainerMetadata(const ContainerMetadata& m) {
  json md = {{"ID", m.id},
             {"Name", m.name},
             {"SandboxID", m.sandbox_id},
             {"Config", ProtoToJson(m.config)},
             {"ImageRef", m.image_ref},
             {"LogPath", m.log_path},
             {"StopSignal", m.stop_signal},
             {"ProcessLabel", ""}};
  return json{{"Version", "v1"}, {"Metadata", md}}.dump();
}

Result<ContainerMetadata> DecodeContainerMetadata(std::string_view text) {
  BERTH_ASSIGN_OR_RETURN(json md, Envelope(text, "container metadata"));
  ContainerMetadata m;
  m.id = Get<std::string>(md, "ID", "");
  m.name = Get<std::string>(md, "Name", "");
  m.sandbox_id = Get<std::string>(md, "SandboxID", "");
  if (auto c = md.find("Config"); c != md.end() && c->is_object()) {
    BERTH_TRY(JsonToProto(*c, &m.config, "container metadata Config"));
  }
  m.image_ref = Get<std::string>(md, "ImageRef", "");
  m.log_path = Get<std::string>(md, "LogPath", "");
  m.stop_signal = Get<std::string>(md, "StopSignal", "");
  if (m.id.empty()) return InvalidArgument("container metadata: no ID");
  return m;
}

std::string EncodeContainerStatus(const ContainerStatus& s) {
  return json{{"Version", "v1"},
              {"Pid", s.pid},
              {"CreatedAt", s.created_at},
              {"StartedAt", s.started_at},
              {"FinishedAt", s.finished_at},
              {"ExitCode", s.exit_code},
              {"Reason", s.reason},
              {"Message", s.message},
              {"Resources", nullptr}}
      .dump();
}

Result<ContainerStatus> DecodeContainerStatus(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("container status: not JSON");
  if (j.value("Version", "") != "v1") {
    return InvalidArgument("container status: unsupported version");
  }
  ContainerStatus s;
  s.pid = Get<uint32_t>(j, "Pid", 0);
  s.created_at = Get<int64_t>(j, "CreatedAt", 0);
  s.started_at = Get<int64_t>(j, "StartedAt", 0);
  s.finished_at = Get<int64_t>(j, "FinishedAt", 0);
  s.exit_code = Get<int32_t>(j, "ExitCode", 0);
  s.reason = Get<std::string>(j, "Reason", "");
  s.message = Get<std::string>(j, "Message", "");
  return s;
}

Status WriteContainerStatus(const std::string& dir, const ContainerStatus& s) {
  return fs::ReplaceFile(dir + "/status", EncodeContainerStatus(s), 0600);
}

Result<ContainerStatus> ReadContainerStatus(const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(dir + "/status"));
  return DecodeContainerStatus(text);
}

}  // namespace berth::cri
