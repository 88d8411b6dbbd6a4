#include "cli/suggest.h"

#include <gtest/gtest.h>

namespace berth::cli {
namespace {

TEST(SuggestTest, EditDistance) {
  EXPECT_EQ(EditDistance("", ""), 0U);
  EXPECT_EQ(EditDistance("abc", ""), 3U);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3U);
  EXPECT_EQ(EditDistance("images", "imgaes"), 2U);
}

TEST(SuggestTest, NormalizedImageName) {
  std::vector<std::string> names{"docker.io/library/alpine:3", "docker.io/library/busybox:latest"};
  EXPECT_EQ(Nearest("busybox", names), "docker.io/library/busybox:latest");
  EXPECT_EQ(Nearest("docker.io/library/busybox", names), "docker.io/library/busybox:latest");
}

TEST(SuggestTest, TypoInAShortImageName) {
  std::vector<std::string> names{"docker.io/library/alpine:3", "docker.io/library/busybox:latest"};
  EXPECT_EQ(Nearest("busybx", names), "docker.io/library/busybox:latest");
  EXPECT_EQ(Nearest("alpin:3", names), "docker.io/library/alpine:3");
  EXPECT_EQ(Nearest("nginx", names), std::nullopt);
}

TEST(SuggestTest, SameRepositoryOtherTag) {
  std::vector<std::string> names{"docker.io/library/busybox:1.36", "docker.io/library/alpine:3"};
  EXPECT_EQ(Nearest("busybox:latest", names), "docker.io/library/busybox:1.36");
  EXPECT_EQ(Nearest("alpine", names), "docker.io/library/alpine:3");
}

TEST(SuggestTest, TyposAndPrefixes) {
  std::vector<std::string> cmds{"images", "containers", "content", "tasks", "i"};
  EXPECT_EQ(Nearest("imagse", cmds), "images");
  EXPECT_EQ(Nearest("contaners", cmds), "containers");
  EXPECT_EQ(Nearest("tsk", cmds), "tasks");
  EXPECT_EQ(Nearest("contain", cmds), "containers");
  EXPECT_EQ(Nearest("zzzzzzzz", cmds), std::nullopt);
  EXPECT_EQ(Nearest("", cmds), std::nullopt);
  EXPECT_EQ(Nearest("x", {}), std::nullopt);
}

TEST(SuggestTest, NeverSuggestsTheWordItself) {
  EXPECT_EQ(Nearest("web", {"web"}), std::nullopt);
  EXPECT_EQ(Nearest("web", {"web", "web1"}), "web1");
}

TEST(SuggestTest, CliMessagePrintsAHintAsItIs) {
  EXPECT_EQ(CliMessage(NotFound("container \"x\" in namespace \"default\"")),
            "container \"x\" in namespace \"default\": not found");
  EXPECT_EQ(CliMessage(NotFound("image \"b\" not found in namespace \"n\"; did you mean \"c\"?")),
            "image \"b\" not found in namespace \"n\"; did you mean \"c\"?");
  EXPECT_EQ(CliMessage(InvalidArgument("what?")), "what?: invalid argument");
}

}  // namespace
}  // namespace berth::cli
