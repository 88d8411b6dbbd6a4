// `berth events [filter...]`: ctr's `events` command, same output.
//
// ctr prints each envelope with fmt.Println(timestamp, namespace, topic, json): the timestamp as
// Go's time.Time String() ("2024-05-01 10:00:00.123456789 +0000 UTC") and the event decoded by
// its type URL and marshalled with Go's encoding/json -- i.e. the gogo-generated Go struct's
// json tags, not protobuf's JSON mapping. GoJson below reproduces that text from the proto
// descriptor and its gogoproto options:
//   - key = the proto field name (gogo's json tag), or the (gogoproto.jsontag) override;
//   - omitempty unless (gogoproto.nullable) = false (then "", 0, false, zero structs are printed);
//     omitted: "", 0, false, empty repeated/map, unset message;
//   - fields in declaration order, map keys sorted, bytes as base64, enums as numbers;
//   - (gogoproto.stdtime) Timestamps as RFC 3339 strings (Go's zero time when unset and not
//     nullable), (gogoproto.stdduration) as integer nanoseconds, other messages as objects (an
//     Any is {"type_url":...,"value":"<base64>"});
//   - strings escaped as encoding/json does (HTML-safe \u003c \u003e \u0026, \u2028 \u2029,
//     invalid UTF-8 as \ufffd, other control characters as \u00XX).
// An event whose type is unknown here is skipped with a warning, as ctr does.
#include <gogoproto/gogo.pb.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/format.h"
#include "cli/run.h"
#include "common/log.h"
#include "events/types.h"

namespace berth::cli {
namespace {

namespace pb = google::protobuf;

// Go's zero time.Time, what an unset non-nullable stdtime field holds.
constexpr int64_t kGoZeroSeconds = -62135596800;

// --- Go's encoding/json ------------------------------------------------------------------

// Length of the valid UTF-8 sequence at s[i] (Go's utf8.DecodeRune rules), 0 if invalid.
size_t Utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  auto in = [](unsigned char x, unsigned char lo, unsigned char hi) { return x >= lo && x <= hi; };
  size_t left = s.size() - i;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && in(b(1), 0x80, 0xBF) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return left >= 3 && in(b(1), lo, hi) && in(b(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return left >= 4 && in(b(1), lo, hi) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          *out += "\\\"";
          break;
        case '\\':
          *out += "\\\\";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        case '\t':
          *out += "\\t";
          break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            *out += "\\u00";
            out->push_back(kHex[c >> 4]);
            out->push_back(kHex[c & 0xF]);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    size_t n = Utf8Length(s, i);
    if (n == 0) {
      *out += "\\ufffd";
      ++i;
      continue;
    }
    std::string_view rune = s.substr(i, n);
    if (rune == "\u2028") {
      *out += "\\u2028";
    } else if (rune == "\u2029") {
      *out += "\\u2029";
    } else {
      *out += rune;
    }
    i += n;
  }
  out->push_back('"');
}

void AppendBase64(std::string_view data, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift : {18, 12, 6, 0}) out->push_back(kAlphabet[(v >> shift) & 0x3F]);
  }
  if (size_t rest = data.size() - i; rest > 0) {
    uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out->push_back(kAlphabet[(v >> 18) & 0x3F]);
    out->push_back(kAlphabet[(v >> 12) & 0x3F]);
    out->push_back(rest == 2 ? kAlphabet[(v >> 6) & 0x3F] : '=');
    out->push_back('=');
  }
  out->push_back('"');
}

// encoding/json's float format: shortest repr, 'f' unless tiny or huge ('e', "e-07" -> "e-7").
template <class Float>
Status AppendFloat(Float f, std::string* out) {
  if (std::isnan(f) || std::isinf(f)) {
    return InvalidArgument(fmt::format("json: unsupported value: {}", f));
  }
  Float abs = std::fabs(f);
  bool exp = abs != 0 && (abs < Float(1e-6) || abs >= Float(1e21));
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f,
                         exp ? std::chars_format::scientific : std::chars_format::fixed);
  std::string s(buf, r.ptr);
  size_t n = s.size();
  if (exp && n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
    s.erase(n - 2, 1);
  }
  *out += s;
  return Ok();
}

struct JsonField {
  std::string key;
  bool omitempty = true;
  bool skip = false;
};

bool Nullable(const pb::FieldDescriptor& f) {
  const auto& o = f.options();
  return !o.HasExtension(gogoproto::nullable) || o.GetExtension(gogoproto::nullable);
}

// The json tag gogo generates for the field.
JsonField TagOf(const pb::FieldDescriptor& f) {
  const auto& o = f.options();
  bool custom = o.HasExtension(gogoproto::customtype);
  bool repeated_native =
      f.cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE && !custom && f.is_repeated();
  JsonField tag{.key = f.name(), .omitempty = Nullable(f) || repeated_native};
  if (o.HasExtension(gogoproto::jsontag)) {
    const std::string& t = o.GetExtension(gogoproto::jsontag);
    if (t == "-") return {.skip = true};
    size_t comma = t.find(',');
    std::string name = t.substr(0, comma);
    if (!name.empty()) tag.key = name;
    tag.omitempty = comma != std::string::npos && t.find("omitempty", comma) != std::string::npos;
  }
  return tag;
}

bool IsStdTime(const pb::FieldDescriptor& f) {
  return f.message_type() == pb::Timestamp::descriptor() &&
         f.options().GetExtension(gogoproto::stdtime);
}

bool IsStdDuration(const pb::FieldDescriptor& f) {
  return f.message_type() == pb::Duration::descriptor() &&
         f.options().GetExtension(gogoproto::stdduration);
}

// encoding/json's isEmptyValue of the Go field.
bool IsEmpty(const pb::Message& m, const pb::FieldDescriptor& f) {
  const pb::Reflection* r = m.GetReflection();
  if (f.is_repeated()) return r->FieldSize(m, &f) == 0;
  switch (f.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return Nullable(f) && !r->HasField(m, &f);  // a pointer; a struct value is never empty
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(m, &f).empty();
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return !r->GetBool(m, &f);
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return r->GetEnumValue(m, &f) == 0;
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(m, &f) == 0;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return r->GetInt64(m, &f) == 0;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, &f) == 0;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return r->GetUInt64(m, &f) == 0;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return r->GetFloat(m, &f) == 0;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return r->GetDouble(m, &f) == 0;
  }
  return false;
}

Status AppendMessage(const pb::Message& m, std::string* out);

// A message-typed value. `present` = set on the wire; `in_map` = a map value, which Go always
// allocates.
Status AppendMessageValue(const pb::FieldDescriptor& f, const pb::Message& value, bool present,
                          bool in_map, std::string* out) {
  if (IsStdTime(f) || IsStdDuration(f)) {
    const pb::Reflection* r = value.GetReflection();
    const pb::Descriptor* d = value.GetDescriptor();
    int64_t secs = r->GetInt64(value, d->FindFieldByName("seconds"));
    int32_t nanos = r->GetInt32(value, d->FindFieldByName("nanos"));
    if (!present && Nullable(f) && !in_map) {
      *out += "null";
      return Ok();
    }
    if (IsStdDuration(f)) {
      // Go's Duration arithmetic wraps on overflow; so does this (signed overflow is UB).
      *out += std::to_string(static_cast<int64_t>(static_cast<uint64_t>(secs) * 1'000'000'000U +
                                                  static_cast<uint64_t>(nanos)));
      return Ok();
    }
    if (!present) secs = kGoZeroSeconds;
    BERTH_ASSIGN_OR_RETURN(std::string t, GoTimeJson(secs, nanos));
    *out += t;
    return Ok();
  }
  if (!present && Nullable(f) && !in_map) {
    *out += "null";
    return Ok();
  }
  return AppendMessage(value, out);
}

// One scalar or message of field f: the singular value (index < 0) or element `index`.
Status AppendValue(const pb::Message& m, const pb::FieldDescriptor& f, int index, bool in_map,
                   std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = index >= 0;
  switch (f.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      const pb::Message& v = rep ? r->GetRepeatedMessage(m, &f, index) : r->GetMessage(m, &f);
      return AppendMessageValue(f, v, rep || r->HasField(m, &f), in_map || rep, out);
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& v = rep ? r->GetRepeatedStringReference(m, &f, index, &scratch)
                                 : r->GetStringReference(m, &f, &scratch);
      if (f.type() == pb::FieldDescriptor::TYPE_BYTES) {
        AppendBase64(v, out);
      } else {
        AppendJsonString(v, out);
      }
      return Ok();
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      *out += (rep ? r->GetRepeatedBool(m, &f, index) : r->GetBool(m, &f)) ? "true" : "false";
      return Ok();
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      *out += std::to_string(rep ? r->GetRepeatedEnumValue(m, &f, index) : r->GetEnumValue(m, &f));
      return Ok();
    case pb::FieldDescriptor::CPPTYPE_INT32:
      *out += std::to_string(rep ? r->GetRepeatedInt32(m, &f, index) : r->GetInt32(m, &f));
      return Ok();
    case pb::FieldDescriptor::CPPTYPE_INT64:
      *out += std::to_string(rep ? r->GetRepeatedInt64(m, &f, index) : r->GetInt64(m, &f));
      return Ok();
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      *out += std::to_string(rep ? r->GetRepeatedUInt32(m, &f, index) : r->GetUInt32(m, &f));
      return Ok();
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      *out += std::to_string(rep ? r->GetRepeatedUInt64(m, &f, index) : r->GetUInt64(m, &f));
      return Ok();
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return AppendFloat(rep ? r->GetRepeatedFloat(m, &f, index) : r->GetFloat(m, &f), out);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return AppendFloat(rep ? r->GetRepeatedDouble(m, &f, index) : r->GetDouble(m, &f), out);
  }
  return Ok();
}

// A map field: a JSON object with keys sorted as strings (Go sorts the encoded key strings).
Status AppendMap(const pb::Message& m, const pb::FieldDescriptor& f, std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  const pb::FieldDescriptor* key_field = f.message_type()->map_key();
  const pb::FieldDescriptor* value_field = f.message_type()->map_value();
  std::vector<std::pair<std::string, const pb::Message*>> entries;
  for (int i = 0; i < r->FieldSize(m, &f); ++i) {
    const pb::Message& entry = r->GetRepeatedMessage(m, &f, i);
    const pb::Reflection* er = entry.GetReflection();
    std::string key;
    switch (key_field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING:
        key = er->GetString(entry, key_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        key = std::to_string(er->GetInt32(entry, key_field));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        key = std::to_string(er->GetInt64(entry, key_field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        key = std::to_string(er->GetUInt32(entry, key_field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        key = std::to_string(er->GetUInt64(entry, key_field));
        break;
      default:
        return InvalidArgument("json: unsupported type: map with bool keys");
    }
    entries.emplace_back(std::move(key), &entry);
  }
  // Later duplicates win on the wire; keep the last of each key.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(entries[i].first, out);
    out->push_back(':');
    BERTH_TRY(AppendValue(*entries[i].second, *value_field, -1, /*in_map=*/true, out));
  }
  out->push_back('}');
  return Ok();
}

Status AppendField(const pb::Message& m, const pb::FieldDescriptor& f, std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  if (f.is_map()) {
    if (r->FieldSize(m, &f) == 0) {
      *out += "null";  // a nil map (only printed without omitempty)
      return Ok();
    }
    return AppendMap(m, f, out);
  }
  if (f.is_repeated()) {
    int n = r->FieldSize(m, &f);
    if (n == 0) {
      *out += "null";  // a nil slice
      return Ok();
    }
    out->push_back('[');
    for (int i = 0; i < n; ++i) {
      if (i > 0) out->push_back(',');
      BERTH_TRY(AppendValue(m, f, i, false, out));
    }
    out->push_back(']');
    return Ok();
  }
  return AppendValue(m, f, -1, false, out);
}

// Go field name of a oneof (gogo's CamelCase of the proto name).
std::string CamelCase(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out.push_back(upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
    upper = c >= '0' && c <= '9';
  }
  return out;
}

Status AppendMessage(const pb::Message& m, std::string* out) {
  const pb::Descriptor& d = *m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  out->push_back('{');
  bool first = true;
  auto key = [&](const std::string& k) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(k, out);
    out->push_back(':');
  };
  for (int i = 0; i < d.field_count(); ++i) {
    const pb::FieldDescriptor& f = *d.field(i);
    if (const pb::OneofDescriptor* oneof = f.real_containing_oneof()) {
      // An interface field at its first member's place, keyed by its Go name, never omitted:
      // null, or {"<member>": value} (the wrapper struct).
      if (oneof->field(0) != &f) continue;
      key(CamelCase(oneof->name()));
      const pb::FieldDescriptor* set = r->GetOneofFieldDescriptor(m, oneof);
      if (set == nullptr) {
        *out += "null";
        continue;
      }
      out->push_back('{');
      JsonField tag = TagOf(*set);
      if (!(tag.omitempty && IsEmpty(m, *set))) {
        AppendJsonString(tag.key, out);
        out->push_back(':');
        BERTH_TRY(AppendField(m, *set, out));
      }
      out->push_back('}');
      continue;
    }
    JsonField tag = TagOf(f);
    if (tag.skip || (tag.omitempty && IsEmpty(m, f))) continue;
    key(tag.key);
    BERTH_TRY(AppendField(m, f, out));
  }
  out->push_back('}');
  return Ok();
}

}  // namespace

void AddEventsCommand(CLI::App& root, App& app) {
  auto* cmd = root.add_subcommand("events", "display containerd events");
  cmd->alias("event");
  auto filters = std::make_shared<std::vector<std::string>>();
  cmd->add_option("filters", *filters, "[filter...] (any may match)");
  SetAction(cmd, [&app, filters]() -> Status {
    BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
    BERTH_ASSIGN_OR_RETURN(auto stream, LibClient(session).Subscribe(*filters));
    for (;;) {
      // Ends with the stream's error: "EOF" when the daemon closes it, which ctr prints and
      // fails with.
      BERTH_ASSIGN_OR_RETURN(Envelope env, stream->Next());
      std::string json;
      if (!env.type_url.empty()) {
        pb::Any any;
        any.set_type_url(env.type_url);
        any.set_value(env.data);
        auto decoded = events::UnmarshalAny(any);
        if (decoded == nullptr) {
          log::L()
              .With("error", fmt::format("type with url {}: not found", env.type_url))
              .Warn("cannot unmarshal an event from Any");
          continue;
        }
        if (auto s = AppendMessage(*decoded, &json); !s) {
          log::L().WithError(s.error()).Warn("cannot marshal Any into JSON");
          continue;
        }
      }
      // An unset timestamp is Go's zero time, as gogo decodes it.
      std::string when = env.timestamp == std::chrono::system_clock::time_point{}
                             ? GoTimeString(kGoZeroSeconds, 0)
                             : GoTimeString(env.timestamp);
      std::string line = fmt::format("{} {} {} {}\n", when, env.ns, env.topic, json);
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);  // one line per event, as it happens (stdout may be a pipe)
    }
  });
}

}  // namespace berth::cli
