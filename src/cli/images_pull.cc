// `berth images pull`, `berth images push` and `berth content fetch`: ctr's commands over the
// client library's Pull/Push, with a live progress display on a terminal.
#include "cli/images_pull.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <iterator>

#include <fmt/format.h>

#include "cli/progress.h"
#include "common/reference.h"

namespace berth::cli {
namespace {

constexpr const char* kDefaultHostsDir = "/etc/berth/certs.d";

Result<std::vector<images::Platform>> ParsePlatforms(const std::vector<std::string>& specs) {
  std::vector<images::Platform> out;
  for (const auto& s : specs) {
    auto p = images::ParsePlatformSpec(s);
    if (!p) return std::move(p).error().Wrap(fmt::format("unable to parse platform {}", s));
    out.push_back(*p);
  }
  return out;
}

// Go's time.Duration.String for the "done:" line ("1.5s", "250.3ms", "1m2.5s").
std::string GoDuration(std::chrono::nanoseconds d) {
  auto trim = [](std::string s) {
    if (s.find('.') != std::string::npos) {
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s;
  };
  int64_t ns = d.count();
  if (ns == 0) return "0s";  // as Go prints a zero Duration
  if (ns < 1000) return fmt::format("{}ns", ns);
  if (ns < 1'000'000) return trim(fmt::format("{:.3f}", static_cast<double>(ns) / 1e3)) + "µs";
  if (ns < 1'000'000'000) return trim(fmt::format("{:.6f}", static_cast<double>(ns) / 1e6)) + "ms";
  int64_t minutes = ns / 60'000'000'000;
  double secs = static_cast<double>(ns % 60'000'000'000) / 1e9;
  std::string s = trim(fmt::format("{:.9f}", secs)) + "s";
  if (minutes == 0) return s;
  if (minutes < 60) return fmt::format("{}m{}", minutes, s);
  return fmt::format("{}h{}m{}", minutes / 60, minutes % 60, s);
}

double Secs(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

std::map<std::string, std::string> KeyValueLabels(const std::vector<std::string>& kvs) {
  std::map<std::string, std::string> out;
  for (const auto& kv : kvs) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      out[kv] = "";
    } else {
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return out;
}

struct PullFlags {
  RegistryFlags registry;
  std::vector<std::string> platforms;
  bool all_platforms = false;
  bool all_metadata = false;
  std::string snapshotter;
  std::vector<std::string> labels;
  bool print_chain_id = false;
  int max_concurrent_downloads = 3;
  std::vector<std::string> args;
};

void AddFetchFlags(CLI::App* cmd, PullFlags& f) {
  AddRegistryFlags(cmd, f.registry);
  cmd->add_option("--platform", f.platforms,
                  "Pull content from a specific platform (repeatable; default: this host's)")
      ->allow_extra_args(false);
  cmd->add_flag("--all-platforms", f.all_platforms, "pull content and metadata from all platforms");
  cmd->add_flag("--all-metadata", f.all_metadata,
                "Pull metadata for all platforms (layers only for the selected ones)");
  cmd->add_option("--label", f.labels, "labels to attach to the image (k=v, repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--max-concurrent-downloads", f.max_concurrent_downloads,
                  "Set the max concurrent downloads for each pull")
      ->capture_default_str();
}

Result<client::PullOptions> PullOptionsFrom(const PullFlags& f) {
  client::PullOptions o;
  BERTH_ASSIGN_OR_RETURN(o.registry, ResolverOptionsFrom(f.registry));
  BERTH_ASSIGN_OR_RETURN(o.platforms, ParsePlatforms(f.platforms));
  o.all_platforms = f.all_platforms;
  o.all_metadata = f.all_metadata;
  o.snapshotter = f.snapshotter;
  o.labels = KeyValueLabels(f.labels);
  if (f.max_concurrent_downloads < 0) {
    return InvalidArgument("--max-concurrent-downloads must not be negative");
  }
  // containerd: 0 = no limit; our pool needs a size.
  o.max_concurrent_downloads = f.max_concurrent_downloads == 0 ? 16 : f.max_concurrent_downloads;
  return o;
}

Status PullAction(App& app, const PullFlags& f, bool unpack) {
  if (f.args.empty() || f.args[0].empty()) {
    return Unknown("please provide an image reference to pull");
  }
  if (f.args.size() > 1) return InvalidArgument("pull takes one reference");
  BERTH_ASSIGN_OR_RETURN(std::string ref, NormalizeRef(f.args[0]));
  BERTH_ASSIGN_OR_RETURN(client::PullOptions options, PullOptionsFrom(f));
  options.unpack = unpack;
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  BERTH_ASSIGN_OR_RETURN(auto result,
                         PullWithProgress(app, session, ref, options, f.print_chain_id));
  (void)result;
  return Ok();
}

struct PushFlags {
  RegistryFlags registry;
  std::vector<std::string> platforms;
  int max_concurrent_uploads = 3;
  std::vector<std::string> args;
};

Status PushAction(App& app, const PushFlags& f) {
  if (f.args.empty() || f.args[0].empty()) {
    return Unknown("please provide a remote image reference to push");
  }
  if (f.args.size() > 2) return InvalidArgument("push takes REMOTE [LOCAL]");
  BERTH_ASSIGN_OR_RETURN(std::string remote, NormalizeRef(f.args[0]));
  std::string local = f.args.size() > 1 ? f.args[1] : remote;
  BERTH_ASSIGN_OR_RETURN(Session session, app.Session());
  client::PushOptions options;
  BERTH_ASSIGN_OR_RETURN(options.registry, ResolverOptionsFrom(f.registry));
  BERTH_ASSIGN_OR_RETURN(options.platforms, ParsePlatforms(f.platforms));
  options.max_concurrent_uploads = std::max(1, f.max_concurrent_uploads);
  ProgressDisplay display(stdout, TerminalWidth(STDOUT_FILENO));
  options.progress = [&display](const std::vector<client::TransferStatus>& rows) {
    display.Update(rows);
  };
  auto pushed = client::Push(session, remote, local, options);
  if (!pushed && pushed.error().Is(Errc::kNotFound) && f.args.size() > 1) {
    // `berth images push REMOTE busybox`: the local name normalized.
    auto normalized = NormalizeRef(local);
    if (normalized && *normalized != local) {
      pushed = client::Push(session, remote, *normalized, options);
    }
  }
  display.Finish();
  if (!pushed) return std::move(pushed).error();
  return Ok();
}

// Finds `digest` in the image `root` as the registry serves it (manifests and indexes read into
// memory, at most `depth` levels down): its descriptor, for the size and media type.
Result<images::OciDescriptor> FindInRegistry(remotes::Fetcher& fetcher,
                                             const images::OciDescriptor& root,
                                             const std::string& digest, int depth = 3) {
  if (root.digest == digest) return root;
  if (depth == 0) return NotFound(fmt::format("{} in the image", digest));
  std::string body;
  if (root.size > (16 << 20)) return NotFound(fmt::format("{} in the image", digest));
  BERTH_TRY(fetcher.Fetch(root, 0, [&](std::string_view chunk) -> Status {
    body.append(chunk);
    return Ok();
  }));
  images::BlobReader reader = [&](const images::OciDescriptor&) -> Result<std::string> {
    return body;
  };
  BERTH_ASSIGN_OR_RETURN(auto children, images::ImageChildren(reader, root));
  for (const auto& ch : children) {
    if (ch.digest == digest) return ch;
  }
  for (const auto& ch : children) {
    auto found = FindInRegistry(fetcher, ch, digest, depth - 1);
    if (found) return found;
    if (!found.error().Is(Errc::kNotFound)) return found;
  }
  return NotFound(fmt::format("{} in the image", digest));
}

struct FetchBlobFlags {
  RegistryFlags registry;
  std::string output;
  std::vector<std::string> args;
};

Status FetchBlobAction(const FetchBlobFlags& f) {
  if (f.args.size() != 2) return InvalidArgument("usage: content fetch-blob <ref> <digest>");
  BERTH_ASSIGN_OR_RETURN(std::string ref, NormalizeRef(f.args[0]));
  const std::string& digest = f.args[1];
  BERTH_ASSIGN_OR_RETURN(auto options, ResolverOptionsFrom(f.registry));
  remotes::Resolver resolver(options);
  auto resolved = resolver.Resolve(ref);
  if (!resolved) {
    return std::move(resolved).error().Wrap(fmt::format("failed to resolve reference {:?}", ref));
  }
  BERTH_ASSIGN_OR_RETURN(auto fetcher, resolver.NewFetcher(resolved->name));
  auto desc = FindInRegistry(*fetcher, resolved->desc, digest);
  if (!desc) return std::move(desc).error().Wrap(ref);
  std::FILE* out = stdout;
  std::string tmp;
  if (!f.output.empty() && f.output != "-") {
    tmp = f.output + ".berth-tmp";
    out = std::fopen(tmp.c_str(), "wbe");
    if (out == nullptr) return ErrnoError(errno, fmt::format("open {}", tmp));
  }
  auto st = fetcher->Fetch(*desc, 0, [&](std::string_view chunk) -> Status {
    if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) {
      return ErrnoError(errno, fmt::format("write {}", tmp.empty() ? "stdout" : tmp));
    }
    return Ok();
  });
  if (out != stdout) {
    bool closed = std::fclose(out) == 0;
    // Only verified bytes reach the named file.
    if (st && !closed) st = ErrnoError(errno, fmt::format("close {}", tmp));
    if (st && std::rename(tmp.c_str(), f.output.c_str()) != 0) {
      st = ErrnoError(errno, fmt::format("rename {} to {}", tmp, f.output));
    }
    if (!st) std::remove(tmp.c_str());
  } else {
    std::fflush(stdout);
  }
  if (!st) return std::move(st).error().Wrap(fmt::format("fetch {} of {}", digest, ref));
  return Ok();
}

}  // namespace

void AddRegistryFlags(CLI::App* cmd, RegistryFlags& f) {
  cmd->add_flag("-k,--skip-verify", f.skip_verify, "skip SSL certificate validation");
  cmd->add_flag("--plain-http", f.plain_http, "allow connections using plain HTTP");
  cmd->add_option("-u,--user", f.user,
                  "user[:password] Registry user and password (without a password, it is read "
                  "from stdin when stdin is not a terminal; there is no prompt)");
  cmd->add_flag("--refresh", f.refresh, "refresh token for authorization server (ignored)");
  cmd->add_option("--hosts-dir", f.hosts_dir,
                  "Custom hosts configuration directory (default: /etc/berth/certs.d if it "
                  "exists)");
  cmd->add_option("--tlscacert", f.tlscacert,
                  "path to TLS root CA (ignored: use a hosts.toml `ca` in --hosts-dir)");
  cmd->add_option("--tlscert", f.tlscert,
                  "path to TLS client certificate (ignored: use hosts.toml `client`)");
  cmd->add_option("--tlskey", f.tlskey, "path to TLS client key (ignored: use hosts.toml)");
  cmd->add_flag("--http-dump", f.http_dump, "dump all HTTP request/responses (ignored)");
  cmd->add_flag("--http-trace", f.http_trace, "enable HTTP tracing (ignored)");
}

Result<remotes::ResolverOptions> ResolverOptionsFrom(const RegistryFlags& f) {
  remotes::ResolverOptions o;
  o.plain_http = f.plain_http;
  o.skip_verify = f.skip_verify;
  if (!f.hosts_dir.empty()) {
    o.hosts_dir = f.hosts_dir;
  } else if (struct stat st{}; ::stat(kDefaultHostsDir, &st) == 0 && S_ISDIR(st.st_mode)) {
    o.hosts_dir = kDefaultHostsDir;
  }
  if (!f.user.empty()) {
    remotes::Credentials c;
    auto colon = f.user.find(':');
    if (colon != std::string::npos) {
      c.username = f.user.substr(0, colon);
      c.secret = f.user.substr(colon + 1);
    } else {
      c.username = f.user;
      if (::isatty(STDIN_FILENO) == 1) {
        return InvalidArgument(fmt::format(
            "--user {:?} has no password: give user:password, or pipe the password on stdin",
            f.user));
      }
      std::string secret((std::istreambuf_iterator<char>(std::cin)),
                         std::istreambuf_iterator<char>());
      while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
      c.secret = std::move(secret);
    }
    o.credentials = std::move(c);
  }
  return o;
}

Result<std::string> NormalizeRef(std::string_view ref) {
  auto parsed = reference::ParseNormalized(ref);
  if (!parsed) return std::move(parsed).error();
  return parsed->String();
}

Result<client::PullResult> PullWithProgress(App& app, const Session& session,
                                            const std::string& ref,
                                            const client::PullOptions& options,
                                            bool print_chain_id) {
  ProgressDisplay display(stdout, TerminalWidth(STDOUT_FILENO));
  client::PullOptions o = options;
  o.progress = [&display](const std::vector<client::TransferStatus>& rows) {
    display.Update(rows);
  };
  auto result = client::Pull(session, ref, o);
  display.Finish();
  if (!result) return std::move(result).error();
  if (result->unpacked) {
    images::Platform p = o.platforms.empty() ? images::DefaultPlatform() : o.platforms.front();
    std::printf("unpacking %s %s...\n", images::FormatPlatform(p).c_str(),
                result->target.digest.c_str());
    if (print_chain_id) std::printf("image chain ID: %s\n", result->unpacked->chain_id.c_str());
    // ctr times its Unpack call; a re-pull that applies nothing still took its checks' time
    // (never "done: 0s").
    const auto& u = *result->unpacked;
    std::printf("done: %s\t\n", GoDuration(u.applied > 0 ? u.apply_time : u.elapsed).c_str());
  }
  std::fflush(stdout);
  if (app.Flags().debug) {
    const auto& t = result->timings;
    std::fprintf(stderr,
                 "pull timings: resolve=%.3fs fetch=%.3fs unpack=%.3fs total=%.3fs bytes=%lld\n",
                 Secs(t.resolve), Secs(t.fetch), Secs(t.unpack), Secs(t.total),
                 static_cast<long long>(t.bytes_fetched));
  }
  return result;
}

void AddImagesPullCommands(CLI::App* images, App& app) {
  {
    auto* cmd =
        images->add_subcommand("pull",
                               "pull an image from a remote\n"
                               "  berth images pull [flags] <ref>\n"
                               "  Short references are normalized as docker does (busybox ->\n"
                               "  docker.io/library/busybox:latest); ctr requires the full form.");
    auto f = std::make_shared<PullFlags>();
    AddFetchFlags(cmd, *f);
    cmd->add_option("--snapshotter", f->snapshotter,
                    "snapshotter name. Empty value stands for the default value.")
        ->envname("CONTAINERD_SNAPSHOTTER");
    cmd->add_flag("--print-chainid", f->print_chain_id, "Print the resulting image's chain ID");
    cmd->add_option("ref", f->args, "<ref>");
    SetAction(cmd, [&app, f]() -> Status { return PullAction(app, *f, /*unpack=*/true); });
  }
  {
    auto* cmd = images->add_subcommand(
        "push",
        "push an image to a remote\n"
        "  berth images push [flags] <remote> [<local>]\n"
        "  The local image (default: <remote>) is pushed to <remote>: blobs the registry lacks,\n"
        "  then manifests, the root by the remote's tag.");
    auto f = std::make_shared<PushFlags>();
    AddRegistryFlags(cmd, f->registry);
    cmd->add_option("--platform", f->platforms, "push content from a specific platform")
        ->allow_extra_args(false);
    cmd->add_option("--max-concurrent-uploaded-layers", f->max_concurrent_uploads,
                    "Set the max concurrent uploaded layers for each push")
        ->capture_default_str();
    cmd->add_option("refs", f->args, "<remote> [<local>]");
    SetAction(cmd, [&app, f]() -> Status { return PushAction(app, *f); });
  }
}

void AddContentFetchCommands(CLI::App* content, App& app) {
  auto* cmd = content->add_subcommand("fetch",
                                      "fetch all content for an image into berthd (no unpack)\n"
                                      "  berth content fetch [flags] <ref>");
  auto f = std::make_shared<PullFlags>();
  AddFetchFlags(cmd, *f);
  cmd->add_option("ref", f->args, "<ref>");
  SetAction(cmd, [&app, f]() -> Status { return PullAction(app, *f, /*unpack=*/false); });

  auto* blob = content->add_subcommand(
      "fetch-blob",
      "fetch one blob of an image from its registry (not into berthd)\n"
      "  berth content fetch-blob [flags] <ref> <digest>\n"
      "  The blob is verified against its digest; with -o FILE the file appears only then.");
  auto bf = std::make_shared<FetchBlobFlags>();
  AddRegistryFlags(blob, bf->registry);
  blob->add_option("-o,--output", bf->output, "write to FILE instead of stdout");
  blob->add_option("args", bf->args, "<ref> <digest>");
  SetAction(blob, [bf]() -> Status { return FetchBlobAction(*bf); });
}

}  // namespace berth::cli
