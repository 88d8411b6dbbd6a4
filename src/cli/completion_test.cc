#include "cli/completion.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "cli/root.h"
#include "common/fs.h"

namespace berth::cli {
namespace {

class CompletionTest : public ::testing::Test {
 protected:
  void SetUp() override { BuildRoot(root_, flags_, app_); }

  // Runs `script` in `bash -c` after sourcing the generated completion; returns stdout.
  std::string Bash(const std::string& script) {
    auto dir = fs::TempDir::Create("berth-completion-");
    EXPECT_TRUE(dir) << dir.error().ToString();
    if (!dir) return "";
    std::string file = dir->Path() + "/berth.bash";
    std::ofstream(file) << BashCompletion(root_);
    std::string cmd = "bash -c 'source " + file + " && " + script + "' 2>&1";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    EXPECT_NE(p, nullptr);
    if (p == nullptr) return "";
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    EXPECT_EQ(::pclose(p), 0) << out;
    return out;
  }
  // COMPREPLY for the words (the last one is being completed), space-joined.
  std::string Complete(const std::string& words) {
    return Bash("COMP_WORDS=(" + words + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _berth; " +
                "echo \"${COMPREPLY[*]}\"");
  }

  GlobalFlags flags_;
  App app_{flags_};
  CLI::App root_;
};

// Every command and group says what it does in --help.
TEST_F(CompletionTest, EveryCommandHasADescription) {
  std::vector<std::pair<std::string, CLI::App*>> todo{{"berth", &root_}};
  size_t seen = 0;
  while (!todo.empty()) {
    auto [path, app] = todo.back();
    todo.pop_back();
    ++seen;
    EXPECT_FALSE(app->get_description().empty()) << path << " has no description";
    for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
      todo.emplace_back(path + " " + sub->get_name(), sub);
    }
  }
  EXPECT_GT(seen, 60U);  // the whole tree was walked
}

TEST_F(CompletionTest, BashRegistersAndCompletesCommands) {
  std::string registered = Bash("complete -p berth");
  EXPECT_EQ(registered, "complete -F _berth berth\n");
  EXPECT_EQ(Complete("berth ima"), "images image\n");
  EXPECT_EQ(Complete("berth images l"), "list ls label\n");
  EXPECT_EQ(Complete("berth i"), "images image i\n");
  // Aliases lead to the same node; flags after a dash, global flags skipped.
  std::string flags = Complete("berth -n x i ls --");
  EXPECT_NE(flags.find("--quiet"), std::string::npos) << flags;
  EXPECT_NE(flags.find("--format"), std::string::npos) << flags;
  EXPECT_EQ(Complete("berth completion \"\""), "bash zsh\n");
  EXPECT_EQ(Complete("berth images nosuch l"), "list ls label\n");  // arguments are skipped
}

TEST_F(CompletionTest, ZshScriptDescribesCommands) {
  std::string zsh = ZshCompletion(root_);
  EXPECT_EQ(zsh.rfind("#compdef berth\n", 0), 0U);
  EXPECT_NE(zsh.find("'images:manage images'"), std::string::npos);
  EXPECT_NE(zsh.find("compdef _berth berth"), std::string::npos);
  // zsh is not installed here; its functions share bash's syntax for the parts that walk the
  // tree, so check that much with bash (a syntax error fails).
  auto dir = fs::TempDir::Create("berth-completion-");
  ASSERT_TRUE(dir) << dir.error().ToString();
  std::string file = dir->Path() + "/_berth";
  std::ofstream(file) << zsh;
  if (std::system("command -v zsh >/dev/null 2>&1") == 0) {
    EXPECT_EQ(std::system(("zsh -n " + file).c_str()), 0);
  }
  EXPECT_EQ(std::system(("bash -n " + file).c_str()), 0);
}

TEST_F(CompletionTest, UnknownCommandSuggestsTheNearest) {
  auto msg = [&](std::vector<const char*> args) {
    args.insert(args.begin(), "berth");
    return UnknownCommandMessage(root_, static_cast<int>(args.size()), args.data());
  };
  EXPECT_EQ(msg({"imagse"}), "unknown command \"imagse\" for \"berth\"; did you mean \"images\"?");
  EXPECT_EQ(msg({"-n", "ns1", "i", "lst"}),
            "unknown command \"lst\" for \"berth images\"; did you mean \"list\"?");
  EXPECT_EQ(msg({"contaienrs", "ls"}),
            "unknown command \"contaienrs\" for \"berth\"; did you mean \"containers\"?");
  EXPECT_EQ(msg({"qqqqqqqqqq"}), "unknown command \"qqqqqqqqqq\" for \"berth\"");
  EXPECT_EQ(msg({"images", "ls", "name==x"}), "");  // a positional argument, not a command
  EXPECT_EQ(msg({"images"}), "");
}

}  // namespace
}  // namespace berth::cli
