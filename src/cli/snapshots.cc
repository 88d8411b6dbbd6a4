// `berth snapshots`: ctr's snapshot commands over the Snapshots and Diff services, with ctr's
// output (tables, tree, Go-style JSON, mount command lines).

#include <cstdio>
#include <ctime>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "cli/app.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/run.h"
#include "cli/table.h"
#include "cli/tabwriter.h"
#include "common/proto_time.h"

namespace berth::cli {
namespace {

constexpr const char* kGcRootLabel = "containerd.io/gc.root";

// ---- Go encoding/json as ctr's PrintAsJSON (json.MarshalIndent, 4 spaces) ----

// One UTF-8 sequence at s[i] as Go's utf8.DecodeRuneInString accepts it; 0 if invalid.
size_t ValidUtf8Length(std::string_view s, size_t i, uint32_t& cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = 0;
  uint32_t min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, cp = c & 0x1f, min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, cp = c & 0x0f, min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char b = byte(i + k);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// A Go JSON string: HTML-safe (<, >, & escaped), invalid UTF-8 as U+FFFD.
std::string GoJsonQuote(std::string_view s) {
  std::string out = "\"";
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out += fmt::format("\\u{:04x}", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t n = ValidUtf8Length(s, i, cp);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) {
      out += fmt::format("\\u{:04x}", cp);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out += '"';
  return out;
}

// snapshots.Kind as the Go proxy maps it (anything unknown reads as Committed).
std::string_view KindString(snapshots_api::Kind kind) {
  switch (kind) {
    case snapshots_api::ACTIVE:
      return "Active";
    case snapshots_api::VIEW:
      return "View";
    default:
      return "Committed";
  }
}

// time.Time's MarshalJSON (RFC3339Nano, UTC as gogo's stdtime decodes it).
std::string GoTime(const google::protobuf::Timestamp& ts, bool present) {
  if (!present) return "0001-01-01T00:00:00Z";
  return FormatProtoTime(ts);
}

// snapshots.Info through json.MarshalIndent: Parent and Labels are omitempty.
std::string InfoJson(const snapshots_api::Info& info) {
  std::string out = "{\n";
  out += fmt::format("    \"Kind\": {},\n", GoJsonQuote(KindString(info.kind())));
  out += fmt::format("    \"Name\": {},\n", GoJsonQuote(info.name()));
  if (!info.parent().empty()) {
    out += fmt::format("    \"Parent\": {},\n", GoJsonQuote(info.parent()));
  }
  if (!info.labels().empty()) {
    std::map<std::string, std::string> labels(info.labels().begin(), info.labels().end());
    out += "    \"Labels\": {\n";
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ",\n";
      first = false;
      out += fmt::format("        {}: {}", GoJsonQuote(k), GoJsonQuote(v));
    }
    out += "\n    },\n";
  }
  out +=
      fmt::format("    \"Created\": \"{}\",\n", GoTime(info.created_at(), info.has_created_at()));
  out += fmt::format("    \"Updated\": \"{}\"\n", GoTime(info.updated_at(), info.has_updated_at()));
  out += "}";
  return out;
}

// []mount.Mount through json.MarshalIndent (Options of a proto mount is nil when empty).
std::string MountsJson(const std::vector<mount::Mount>& mounts) {
  if (mounts.empty()) return "[]";
  std::string out = "[\n";
  for (size_t i = 0; i < mounts.size(); ++i) {
    const auto& m = mounts[i];
    out += "    {\n";
    out += fmt::format("        \"Type\": {},\n", GoJsonQuote(m.type));
    out += fmt::format("        \"Source\": {},\n", GoJsonQuote(m.source));
    if (m.options.empty()) {
      out += "        \"Options\": null\n";
    } else {
      out += "        \"Options\": [\n";
      for (size_t j = 0; j < m.options.size(); ++j) {
        out += "            " + GoJsonQuote(m.options[j]);
        out += j + 1 < m.options.size() ? ",\n" : "\n";
      }
      out += "        ]\n";
    }
    out += i + 1 < mounts.size() ? "    },\n" : "    }\n";
  }
  out += "]";
  return out;
}

void PrintMounts(const std::string& target, const std::vector<mount::Mount>& mounts) {
  for (const auto& m : mounts) {
    std::string options;
    for (const auto& o : m.options) {
      if (!options.empty()) options += ',';
      options += o;
    }
    fmt::print("mount -t {} {} {} -o {}\n", m.type, m.source, target, options);
  }
}

// time.Now().UTC().Format(time.RFC3339): the value ctr gives containerd.io/gc.root.
std::string NowUtcRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- tree (ctr's snapshotTree) ----

class SnapshotTree {
 public:
  void Add(const snapshots_api::Info& info) { AddNode(info.name(), info.parent()); }

  std::string Print() const {
    std::string out;
    for (const auto& name : order_) {
      if (nodes_.at(name).parent.empty()) PrintNode(name, 0, out);
    }
    return out;
  }

 private:
  struct Node {
    std::string parent;
    std::vector<std::string> children;
  };

  void AddNode(const std::string& name, const std::string& parent) {
    auto it = nodes_.find(name);
    if (it == nodes_.end()) {
      nodes_[name] = Node{parent, {}};
      order_.push_back(name);
    } else {
      it->second.parent = parent;  // a placeholder gets its real info
    }
    if (!parent.empty()) {
      if (nodes_.find(parent) == nodes_.end()) AddNode(parent, "");
      nodes_[parent].children.push_back(name);
    }
  }

  void PrintNode(const std::string& name, int level, std::string& out) const {
    std::string prefix(static_cast<size_t>(level) * 2, ' ');
    if (level > 0) prefix += "\\_";
    out += prefix + " " + name + "\n";
    for (const auto& child : nodes_.at(name).children) PrintNode(child, level + 1, out);
  }

  std::unordered_map<std::string, Node> nodes_;
  std::vector<std::string> order_;
};

// ---- commands ----

struct Flags {
  std::string snapshotter;  // the group's --snapshotter (env CONTAINERD_SNAPSHOTTER)
};

Result<SnapshotClient> Snapshotter(App& app, const std::string& name) {
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(std::string resolved, ResolveSnapshotterName(session, name));
  return SnapshotClient(session, resolved);
}

Status ListAction(App& app, const Flags& flags, const std::string& format) {
  BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(format));
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  Table table({{"KEY", "key"},
               {"PARENT", "parent"},
               {"KIND", "kind"},
               {"", "labels"},
               {"", "created_at"},
               {"", "updated_at"}},
              {});
  BERTH_TRY(sn.Walk([&](const snapshots_api::Info& info) -> Status {
    table.Add({info.name(), info.parent(), KindString(info.kind()),
               LabelsCell({info.labels().begin(), info.labels().end()}),
               TimeCell("", info.created_at().seconds(), info.created_at().nanos()),
               TimeCell("", info.updated_at().seconds(), info.updated_at().nanos())});
    return Ok();
  }));
  fmt::print("{}", table.Render(output));
  return Ok();
}

Status UsageAction(App& app, const Flags& flags, bool bytes, const std::string& format,
                   const std::vector<std::string>& keys) {
  BERTH_ASSIGN_OR_RETURN(OutputFormat output, ParseOutputFormat(format));
  auto display = [bytes](int64_t size) {
    return bytes ? std::to_string(size) : ProgressBytes(size);
  };
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  Table table({{"KEY", "key"}, {"SIZE", "size"}, {"INODES", "inodes"}}, {});
  auto row = [&](const std::string& key) -> Status {
    BERTH_ASSIGN_OR_RETURN(SnapshotUsage usage, sn.Usage(key));
    table.Add({key, NumberCell(display(usage.size), usage.size),
               NumberCell(std::to_string(usage.inodes), usage.inodes)});
    return Ok();
  };
  if (keys.empty()) {
    BERTH_TRY(sn.Walk([&](const snapshots_api::Info& info) { return row(info.name()); }));
  } else {
    for (const auto& key : keys) BERTH_TRY(row(key));
  }
  fmt::print("{}", table.Render(output));
  return Ok();
}

Status RemoveAction(App& app, const Flags& flags, const std::vector<std::string>& keys) {
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  for (const auto& key : keys) {
    if (auto s = sn.Remove(key); !s) {
      return std::move(s).error().Wrap(fmt::format("failed to remove {:?}", key));
    }
  }
  return Ok();
}

// prepare and view: [flags] <key> [<parent>].
Status CreateAction(App& app, const Flags& flags, CLI::App* cmd, bool view,
                    const std::vector<std::string>& args, const std::string& target,
                    bool print_json) {
  if (args.empty() || args.size() > 2) {
    fmt::print("{}", cmd->help());
    return Ok();
  }
  const std::string& key = args[0];
  std::string parent = args.size() > 1 ? args[1] : "";
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  Result<std::vector<mount::Mount>> mounts =
      view ? sn.View(key, parent) : sn.Prepare(key, parent, {{kGcRootLabel, NowUtcRfc3339()}});
  if (!mounts) return std::move(mounts).error();
  if (!target.empty()) PrintMounts(target, *mounts);
  if (print_json) fmt::print("{}\n", MountsJson(*mounts));
  return Ok();
}

Status MountsAction(App& app, const Flags& flags, CLI::App* cmd,
                    const std::vector<std::string>& args) {
  if (args.size() != 2) {
    fmt::print("{}", cmd->help());
    return Ok();
  }
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  BERTH_ASSIGN_OR_RETURN(auto mounts, sn.Mounts(args[1]));
  PrintMounts(args[0], mounts);
  return Ok();
}

Status CommitAction(App& app, const Flags& flags, CLI::App* cmd,
                    const std::vector<std::string>& args) {
  if (args.size() != 2) {
    fmt::print("{}", cmd->help());
    return Ok();
  }
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  return sn.Commit(args[0], args[1], {{kGcRootLabel, NowUtcRfc3339()}});
}

Status TreeAction(App& app, const Flags& flags) {
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  SnapshotTree tree;
  BERTH_TRY(sn.Walk([&](const snapshots_api::Info& info) -> Status {
    tree.Add(info);
    return Ok();
  }));
  fmt::print("{}", tree.Print());
  return Ok();
}

Status InfoAction(App& app, const Flags& flags, CLI::App* cmd,
                  const std::vector<std::string>& args) {
  if (args.size() != 1) {
    fmt::print("{}", cmd->help());
    return Ok();
  }
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  BERTH_ASSIGN_OR_RETURN(auto info, sn.Stat(args[0]));
  fmt::print("{}\n", InfoJson(info));
  return Ok();
}

Status LabelAction(App& app, const Flags& flags, const std::vector<std::string>& args) {
  std::string key = args.empty() ? std::string() : args[0];
  auto labels = LabelArgs(args, 1);
  BERTH_ASSIGN_OR_RETURN(SnapshotClient sn, Snapshotter(app, flags.snapshotter));
  snapshots_api::Info info;
  info.set_name(key);
  std::vector<std::string> paths;
  for (const auto& [k, v] : labels) {
    paths.push_back("labels." + k);
    if (!v.empty()) (*info.mutable_labels())[k] = v;
  }
  // Nothing to update: do not clear, just show.
  auto stored = paths.empty() ? sn.Stat(key) : sn.Update(info, paths);
  if (!stored) return std::move(stored).error();
  // ctr prints in Go's map order (random); sorted here.
  std::map<std::string, std::string> sorted(stored->labels().begin(), stored->labels().end());
  fmt::print("{}\n", JoinLabels(sorted));
  return Ok();
}

// withMounts: an active snapshot's own mounts, else a temporary "<id>-view-key" view.
Result<OciDescriptor> WithMounts(
    const SnapshotClient& sn, const std::string& id,
    const std::function<Result<OciDescriptor>(const std::vector<mount::Mount>&)>& fn) {
  BERTH_ASSIGN_OR_RETURN(auto info, sn.Stat(id));
  if (info.kind() == snapshots_api::ACTIVE) {
    BERTH_ASSIGN_OR_RETURN(auto mounts, sn.Mounts(id));
    return fn(mounts);
  }
  std::string key = id + "-view-key";
  BERTH_ASSIGN_OR_RETURN(auto mounts, sn.View(key, id));
  auto result = fn(mounts);
  (void)sn.Remove(key);
  return result;
}

// rootfs.CreateDiff: the snapshot against a view of its parent.
Result<OciDescriptor> CreateDiff(const SnapshotClient& sn, const std::string& id,
                                 const DiffOptions& options) {
  BERTH_ASSIGN_OR_RETURN(auto info, sn.Stat(id));
  std::string lower_key = fmt::format("{}-parent-view-{}", info.parent(), NewUniqueId());
  BERTH_ASSIGN_OR_RETURN(auto lower, sn.View(lower_key, info.parent()));
  auto run = [&]() -> Result<OciDescriptor> {
    if (info.kind() == snapshots_api::ACTIVE) {
      BERTH_ASSIGN_OR_RETURN(auto upper, sn.Mounts(id));
      return DiffCompare(sn.GetSession(), lower, upper, options);
    }
    std::string upper_key = fmt::format("{}-view-{}", id, NewUniqueId());
    BERTH_ASSIGN_OR_RETURN(auto upper, sn.View(upper_key, id));
    auto result = DiffCompare(sn.GetSession(), lower, upper, options);
    (void)sn.Remove(upper_key);
    return result;
  };
  auto result = run();
  (void)sn.Remove(lower_key);
  return result;
}

struct DiffFlags {
  std::string media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  std::string ref;
  bool keep = false;
  std::vector<std::string> labels;
};

Status DiffAction(App& app, const Flags& flags, const DiffFlags& diff_flags,
                  const std::vector<std::string>& args) {
  std::string id_a = args.empty() ? std::string() : args[0];
  std::string id_b = args.size() > 1 ? args[1] : "";
  if (id_a.empty()) return Unknown("snapshot id must be provided");
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(LeasedSession leased, WithLease(session));
  struct Done {
    std::function<void()> fn;
    ~Done() { fn(); }
  } done{leased.done};

  DiffOptions options;
  options.media_type = diff_flags.media_type;
  options.ref = diff_flags.ref;
  options.labels = LabelArgs(diff_flags.labels, 0);
  if (diff_flags.keep) options.labels[kGcRootLabel] = NowUtcRfc3339();
  BERTH_ASSIGN_OR_RETURN(std::string name,
                         ResolveSnapshotterName(leased.session, flags.snapshotter));
  SnapshotClient sn(leased.session, name);

  Result<OciDescriptor> desc = Unknown("unreachable");
  if (id_b.empty()) {
    desc = CreateDiff(sn, id_a, options);
  } else {
    desc = WithMounts(sn, id_a, [&](const std::vector<mount::Mount>& a) {
      return WithMounts(sn, id_b, [&](const std::vector<mount::Mount>& b) {
        return DiffCompare(leased.session, a, b, options);
      });
    });
  }
  if (!desc) return std::move(desc).error();
  return CopyContent(leased.session, desc->digest, stdout);
}

// `snapshots unpack DIGEST`: image.Unpack of the image whose target is DIGEST.
Status UnpackAction(App& app, const std::string& snapshotter_flag,
                    const std::vector<std::string>& args) {
  std::string digest = args.empty() ? std::string() : args[0];
  BERTH_TRY(ValidateDigest(digest));
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto images, LibClient(session).ListImages());
  for (const auto& image : images) {
    if (image.Target().digest != digest) continue;
    fmt::print("unpacking {} ({})...", digest, image.Target().media_type);
    std::fflush(stdout);
    auto unpacked = [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(std::string name, ResolveSnapshotterName(session, snapshotter_flag));
      OciDescriptor target;
      target.media_type = image.Target().media_type;
      target.digest = image.Target().digest;
      target.size = image.Target().size;
      UnpackOptions options;
      options.snapshotter = name;
      BERTH_TRY(UnpackImage(session, target, PlatformMatcher::Only(DefaultPlatform()), options));
      return Ok();
    }();
    if (!unpacked) {
      fmt::print("\n");
      return unpacked;
    }
    fmt::print("done\n");
    return Ok();
  }
  return Unknown("manifest not found");
}

}  // namespace

void AddSnapshotsCommand(CLI::App& root, App& app) {
  auto* group = root.add_subcommand("snapshots", "manage snapshots");
  group->alias("snapshot");
  group->require_subcommand(1);
  auto flags = std::make_shared<Flags>();
  group
      ->add_option("--snapshotter", flags->snapshotter,
                   "snapshotter name. Empty value stands for the default value.")
      ->envname("CONTAINERD_SNAPSHOTTER");

  {
    auto* cmd = group->add_subcommand("commit", "commit an active snapshot into the provided name");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<key> <active>");
    SetAction(cmd, [&app, flags, cmd, args] { return CommitAction(app, *flags, cmd, *args); });
  }
  {
    auto* cmd = group->add_subcommand(
        "diff",
        "get the diff of two snapshots. the default second snapshot is the first snapshot's "
        "parent.");
    auto diff_flags = std::make_shared<DiffFlags>();
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--media-type", diff_flags->media_type, "media type to use for creating diff")
        ->capture_default_str();
    cmd->add_option("--ref", diff_flags->ref, "content upload reference to use");
    cmd->add_flag("--keep", diff_flags->keep, "keep diff content. up to creator to delete it.");
    cmd->add_option("--label", diff_flags->labels, "labels to attach to the image")
        ->allow_extra_args(false);
    cmd->add_option("args", *args, "<idA> [<idB>]");
    SetAction(cmd, [&app, flags, diff_flags, args] {
      return DiffAction(app, *flags, *diff_flags, *args);
    });
  }
  {
    auto* cmd = group->add_subcommand("info", "get info about a snapshot");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<key>");
    SetAction(cmd, [&app, flags, cmd, args] { return InfoAction(app, *flags, cmd, *args); });
  }
  {
    auto* cmd = group->add_subcommand("list", "list snapshots");
    cmd->alias("ls");
    auto format = std::make_shared<std::string>("table");
    AddFormatFlag(cmd, format);
    SetAction(cmd, [&app, flags, format] { return ListAction(app, *flags, *format); });
  }
  {
    auto* cmd = group->add_subcommand("mounts", "mount gets mount commands for the snapshots");
    cmd->alias("m");
    cmd->alias("mount");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<target> <key>");
    SetAction(cmd, [&app, flags, cmd, args] { return MountsAction(app, *flags, cmd, *args); });
  }
  for (bool view : {false, true}) {
    auto* cmd =
        view
            ? group->add_subcommand("view", "create a read-only snapshot from a committed snapshot")
            : group->add_subcommand("prepare", "prepare a snapshot from a committed snapshot");
    auto args = std::make_shared<std::vector<std::string>>();
    auto target = std::make_shared<std::string>();
    auto print_json = std::make_shared<bool>(false);
    cmd->add_option("-t,--target", *target, "mount target path, will print mount, if provided");
    cmd->add_flag("--mounts", *print_json, "Print out snapshot mounts as JSON");
    cmd->add_option("args", *args, "<key> [<parent>]");
    SetAction(cmd, [&app, flags, cmd, view, args, target, print_json] {
      return CreateAction(app, *flags, cmd, view, *args, *target, *print_json);
    });
  }
  {
    auto* cmd = group->add_subcommand("delete", "remove snapshots");
    cmd->alias("del");
    cmd->alias("remove");
    cmd->alias("rm");
    auto keys = std::make_shared<std::vector<std::string>>();
    cmd->add_option("keys", *keys, "<key> [<key>, ...]");
    SetAction(cmd, [&app, flags, keys] { return RemoveAction(app, *flags, *keys); });
  }
  {
    auto* cmd = group->add_subcommand("label", "add labels to content");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "<name> [<label>=<value> ...]");
    SetAction(cmd, [&app, flags, args] { return LabelAction(app, *flags, *args); });
  }
  {
    auto* cmd = group->add_subcommand("tree", "display tree view of snapshot branches");
    SetAction(cmd, [&app, flags] { return TreeAction(app, *flags); });
  }
  {
    auto* cmd =
        group->add_subcommand("unpack", "unpack applies layers from a manifest to a snapshot");
    auto snapshotter = std::make_shared<std::string>();
    auto args = std::make_shared<std::vector<std::string>>();
    // ctr reads this command's own flag, not the group's.
    cmd->add_option("--snapshotter", *snapshotter,
                    "snapshotter name. Empty value stands for the default value.")
        ->envname("CONTAINERD_SNAPSHOTTER");
    cmd->add_option("args", *args, "<digest>");
    SetAction(cmd, [&app, snapshotter, args] { return UnpackAction(app, *snapshotter, *args); });
  }
  {
    auto* cmd = group->add_subcommand("usage", "usage snapshots");
    auto bytes = std::make_shared<bool>(false);
    auto keys = std::make_shared<std::vector<std::string>>();
    auto format = std::make_shared<std::string>("table");
    cmd->add_flag("-b", *bytes, "display size in bytes");
    AddFormatFlag(cmd, format);
    cmd->add_option("keys", *keys, "[<key>, ...]");
    SetAction(cmd, [&app, flags, bytes, format, keys] {
      return UsageAction(app, *flags, *bytes, *format, *keys);
    });
  }
}

}  // namespace berth::cli
