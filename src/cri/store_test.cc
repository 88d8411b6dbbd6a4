#include "cri/store.h"

#include <gtest/gtest.h>

#include "cri/persist.h"

namespace berth::cri {
namespace {

TEST(CriStoreTest, LookupByUniquePrefix) {
  Store<Sandbox> s;
  auto a = std::make_shared<Sandbox>();
  auto b = std::make_shared<Sandbox>();
  s.Add(a, "abc123");
  s.Add(b, "abd456");
  EXPECT_EQ(*s.Get("abc123", "sandbox"), a);
  EXPECT_EQ(*s.Get("abc", "sandbox"), a);
  EXPECT_EQ(*s.Get("abd", "sandbox"), b);
  auto ambiguous = s.Get("ab", "sandbox");
  ASSERT_FALSE(ambiguous);
  EXPECT_NE(ambiguous.error().What().find("Multiple IDs found with provided prefix: ab"),
            std::string::npos);
  auto missing = s.Get("x", "sandbox");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
  EXPECT_FALSE(s.Get("", "sandbox"));
  EXPECT_EQ(s.Resolve("abc"), "abc123");
  EXPECT_EQ(s.Resolve("ab"), "");
  s.Remove("abc123");
  EXPECT_EQ(*s.Get("ab", "sandbox"), b);
}

TEST(CriStoreTest, NamesAreReservedOnce) {
  NameIndex names;
  EXPECT_TRUE(names.Reserve("pod_ns_uid_0", "id1"));
  EXPECT_TRUE(names.Reserve("pod_ns_uid_0", "id1"));  // same owner again
  auto clash = names.Reserve("pod_ns_uid_0", "id2");
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().What(), "name \"pod_ns_uid_0\" is reserved for \"id1\"");
  names.Release("pod_ns_uid_0");
  EXPECT_TRUE(names.Reserve("pod_ns_uid_0", "id2"));
}

TEST(CriStoreTest, ContainerStateFromStatus) {
  ContainerStatus s;
  EXPECT_EQ(s.State(), v1::CONTAINER_UNKNOWN);
  s.created_at = 1;
  EXPECT_EQ(s.State(), v1::CONTAINER_CREATED);
  s.started_at = 2;
  EXPECT_EQ(s.State(), v1::CONTAINER_RUNNING);
  s.finished_at = 3;
  EXPECT_EQ(s.State(), v1::CONTAINER_EXITED);
  s.unknown = true;
  EXPECT_EQ(s.State(), v1::CONTAINER_UNKNOWN);
}

TEST(CriPersistTest, MetadataAndStatusRoundTrip) {
  SandboxMetadata sm{.id = "s1",
                     .name = "p_ns_u_0",
                     .netns_path = "/run/netns/cni-x",
                     .ip = "10.0.0.2",
                     .additional_ips = {"fd00::2"},
                     .runtime_handler = "runc",
                     .cni_result = R"({"Interfaces":{}})"};
  sm.config.mutable_metadata()->set_name("p");
  sm.config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  std::string enc = EncodeSandboxMetadata(sm);
  EXPECT_NE(enc.find(R"("Version":"v1")"), std::string::npos);
  auto sd = DecodeSandboxMetadata(enc);
  ASSERT_TRUE(sd) << sd.error().ToString();
  EXPECT_EQ(sd->id, "s1");
  EXPECT_EQ(sd->ip, "10.0.0.2");
  EXPECT_EQ(sd->additional_ips, std::vector<std::string>{"fd00::2"});
  EXPECT_EQ(sd->config.metadata().name(), "p");
  EXPECT_EQ(sd->config.linux().security_context().namespace_options().network(), v1::NODE);
  EXPECT_EQ(sd->cni_result, R"({"Interfaces":{}})");

  ContainerMetadata cm{.id = "c1",
                       .name = "c_p_ns_u_0",
                       .sandbox_id = "s1",
                       .image_ref = "sha256:ab",
                       .log_path = "/l/c.log",
                       .stop_signal = "SIGQUIT"};
  cm.config.add_command("sh");
  auto cd = DecodeContainerMetadata(EncodeContainerMetadata(cm));
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->stop_signal, "SIGQUIT");
  EXPECT_EQ(cd->config.command(0), "sh");

  ContainerStatus st{.pid = 9,
                     .created_at = 1,
                     .started_at = 2,
                     .finished_at = 3,
                     .exit_code = 7,
                     .reason = "Error",
                     .message = "m"};
  auto sd2 = DecodeContainerStatus(EncodeContainerStatus(st));
  ASSERT_TRUE(sd2);
  EXPECT_EQ(sd2->exit_code, 7);
  EXPECT_EQ(sd2->finished_at, 3);
  EXPECT_EQ(sd2->reason, "Error");

  EXPECT_FALSE(DecodeSandboxMetadata("not json"));
  EXPECT_FALSE(DecodeSandboxMetadata(R"({"Version":"v2","Metadata":{"ID":"x"}})"));
  EXPECT_FALSE(DecodeContainerStatus(R"({"Version":"v0"})"));
}

}  // namespace
}  // namespace berth::cri
