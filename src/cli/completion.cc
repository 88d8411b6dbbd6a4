#include "cli/completion.h"

#include <cstdio>
#include <map>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/suggest.h"

namespace berth::cli {
namespace {

struct Node {
  std::string path;  // canonical names from the root, space-separated ("" = root)
  CLI::App* app;
};

std::vector<CLI::App*> Subcommands(CLI::App* app) {
  return app->get_subcommands([](CLI::App*) { return true; });
}

// Every command of the tree, parents before children.
std::vector<Node> Walk(CLI::App& root) {
  std::vector<Node> out{{"", &root}};
  for (size_t i = 0; i < out.size(); ++i) {
    Node node = out[i];
    for (CLI::App* sub : Subcommands(node.app)) {
      out.push_back({node.path.empty() ? sub->get_name() : node.path + " " + sub->get_name(), sub});
    }
  }
  return out;
}

std::vector<std::string> Flags(CLI::App* app) {
  std::vector<std::string> out;
  for (const CLI::Option* opt : app->get_options()) {
    for (const auto& s : opt->get_snames()) out.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) out.push_back("--" + l);
  }
  return out;
}

std::vector<std::string> Names(CLI::App* app) {
  std::vector<std::string> out{app->get_name()};
  for (const auto& a : app->get_aliases()) out.push_back(a);
  return out;
}

// A shell word in single quotes.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

// `_<prog>_child PATH WORD`: REPLY = the child's canonical path, "" if WORD names none.
std::string ChildFunction(const std::string& prog, const std::vector<Node>& nodes) {
  std::string out = fmt::format("_{}_child() {{\n  case \"$1|$2\" in\n", prog);
  for (const auto& node : nodes) {
    for (CLI::App* sub : Subcommands(node.app)) {
      std::string child = node.path.empty() ? sub->get_name() : node.path + " " + sub->get_name();
      std::vector<std::string> patterns;
      for (const auto& name : Names(sub)) patterns.push_back(Quote(node.path + "|" + name));
      out += fmt::format("    {}) REPLY={} ;;\n", fmt::join(patterns, "|"), Quote(child));
    }
  }
  out += "    *) REPLY='' ;;\n  esac\n}\n";
  return out;
}

}  // namespace

std::string BashCompletion(CLI::App& root) {
  const std::string prog = root.get_name().empty() ? "berth" : root.get_name();
  auto nodes = Walk(root);
  std::string out = fmt::format(
      "# bash completion for {0}, generated from its command tree by `{0} completion bash`.\n"
      "# Install: {0} completion bash > /etc/bash_completion.d/{0}\n"
      "#      or: source <({0} completion bash)   (in ~/.bashrc)\n",
      prog);
  out += ChildFunction(prog, nodes);
  out += fmt::format("_{}_words() {{\n  case \"$1\" in\n", prog);
  for (const auto& node : nodes) {
    std::vector<std::string> cmds;
    for (CLI::App* sub : Subcommands(node.app)) {
      for (const auto& n : Names(sub)) cmds.push_back(n);
    }
    out += fmt::format("    {}) _{}_cmds={}; _{}_flags={} ;;\n", Quote(node.path), prog,
                       Quote(fmt::format("{}", fmt::join(cmds, " "))), prog,
                       Quote(fmt::format("{}", fmt::join(Flags(node.app), " "))));
  }
  out += fmt::format("    *) _{0}_cmds=''; _{0}_flags='' ;;\n  esac\n}}\n", prog);
  out += fmt::format(R"(_{0}() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" cpath="" w i REPLY _{0}_cmds _{0}_flags
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    case "$w" in -*) continue ;; esac
    _{0}_child "$cpath" "$w"
    if [[ -n "$REPLY" ]]; then cpath="$REPLY"; fi
  done
  _{0}_words "$cpath"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$_{0}_flags" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$_{0}_cmds" -- "$cur"))
  fi
}}
complete -F _{0} {0}
)",
                     prog);
  return out;
}

std::string ZshCompletion(CLI::App& root) {
  const std::string prog = root.get_name().empty() ? "berth" : root.get_name();
  auto nodes = Walk(root);
  std::string out = fmt::format(
      "#compdef {0}\n"
      "# zsh completion for {0}, generated from its command tree by `{0} completion zsh`.\n"
      "# Install: {0} completion zsh > \"${{fpath[1]}}/_{0}\"   (then restart zsh)\n"
      "#      or: source <({0} completion zsh)   (in ~/.zshrc, after compinit)\n",
      prog);
  out += ChildFunction(prog, nodes);
  out += fmt::format("_{}_words() {{\n  case \"$1\" in\n", prog);
  for (const auto& node : nodes) {
    std::vector<std::string> cmds;
    for (CLI::App* sub : Subcommands(node.app)) {
      std::string desc = FirstLine(sub->get_description());
      for (const auto& n : Names(sub)) cmds.push_back(Quote(n + ":" + desc));
    }
    std::vector<std::string> flags;
    for (const auto& f : Flags(node.app)) flags.push_back(Quote(f));
    out += fmt::format("    {}) cmds=({}); flags=({}) ;;\n", Quote(node.path), fmt::join(cmds, " "),
                       fmt::join(flags, " "));
  }
  out += "    *) cmds=(); flags=() ;;\n  esac\n}\n";
  out += fmt::format(R"(_{0}() {{
  local cpath="" w i REPLY
  local -a cmds flags
  for ((i = 2; i < CURRENT; i++)); do
    w="${{words[i]}}"
    [[ "$w" == -* ]] && continue
    _{0}_child "$cpath" "$w"
    [[ -n "$REPLY" ]] && cpath="$REPLY"
  done
  _{0}_words "$cpath"
  if [[ "${{words[CURRENT]}}" == -* ]]; then
    compadd -- "${{flags[@]}}"
  else
    _describe -t commands '{0} command' cmds
  fi
}}
if [[ "${{zsh_eval_context[-1]}}" == loadautofunc ]]; then
  _{0} "$@"
else
  compdef _{0} {0}
fi
)",
                     prog);
  return out;
}

void AddCompletionCommand(CLI::App& root) {
  auto* group = root.add_subcommand(
      "completion", "print a shell completion script (bash or zsh) generated from the commands");
  group->require_subcommand(1);
  auto* bash =
      group->add_subcommand("bash",
                            "bash completion: source <(berth completion bash), or save it in "
                            "/etc/bash_completion.d/berth");
  bash->callback([&root] { std::fputs(BashCompletion(root).c_str(), stdout); });
  auto* zsh = group->add_subcommand(
      "zsh", "zsh completion: berth completion zsh > \"${fpath[1]}/_berth\", or source it");
  zsh->callback([&root] { std::fputs(ZshCompletion(root).c_str(), stdout); });
}

std::string UnknownCommandMessage(CLI::App& root, int argc, const char* const* argv) {
  CLI::App* node = &root;
  std::string path = root.get_name().empty() ? "berth" : root.get_name();
  auto find_option = [&](const std::string& name) -> const CLI::Option* {
    for (CLI::App* a = node; a != nullptr; a = a->get_parent()) {
      if (const CLI::Option* o = a->get_option_no_throw(name)) return o;
    }
    return nullptr;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") return "";
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      const CLI::Option* opt = find_option(arg);
      if (opt != nullptr && opt->get_type_size_max() > 0 && opt->get_expected_min() > 0) ++i;
      continue;
    }
    auto subs = Subcommands(node);
    CLI::App* next = nullptr;
    for (CLI::App* sub : subs) {
      if (sub->check_name(arg)) next = sub;
    }
    if (next != nullptr) {
      node = next;
      path += " " + next->get_name();
      continue;
    }
    // A word where a subcommand is expected: the node has subcommands and takes no arguments.
    if (subs.empty() ||
        !node->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
      return "";
    }
    std::vector<std::string> names;
    std::map<std::string, std::string> canonical;  // alias -> name: suggest the name
    for (CLI::App* sub : subs) {
      for (const auto& n : Names(sub)) {
        names.push_back(n);
        canonical[n] = sub->get_name();
      }
    }
    std::string msg = fmt::format("unknown command \"{}\" for \"{}\"", arg, path);
    if (auto near = Nearest(arg, names)) {
      msg += fmt::format("; did you mean \"{}\"?", canonical[*near]);
    }
    return msg;
  }
  return "";
}

}  // namespace berth::cli
