#include "services/utf8_guard.h"

#include <github.com/containerd/containerd/api/services/content/v1/content.pb.h>
#include <github.com/containerd/containerd/api/services/leases/v1/leases.pb.h>
#include <gtest/gtest.h>

#include "cri/api/api.pb.h"

namespace berth::services {
namespace {

namespace content = containerd::services::content::v1;

const std::string kBad = "\xff\xfe";

// The generated code takes strings as they come (cmake/proto_lenient_utf8.sed): parsing
// succeeds and the bytes are kept, for the service edge to refuse by name.
TEST(Utf8GuardTest, GeneratedCodeParsesInvalidUtf8) {
  content::WriteContentRequest w;
  w.set_ref(kBad);
  w.set_data(kBad);  // bytes: anything goes
  content::WriteContentRequest back;
  ASSERT_TRUE(back.ParseFromString(w.SerializeAsString()));
  EXPECT_EQ(back.ref(), kBad);
  EXPECT_EQ(FindInvalidUtf8(back), "ref");

  content::WriteContentRequest labels;
  labels.set_ref("r");
  (*labels.mutable_labels())["k"] = kBad;
  content::WriteContentRequest labels_back;
  ASSERT_TRUE(labels_back.ParseFromString(labels.SerializeAsString()));
  EXPECT_EQ(FindInvalidUtf8(labels_back), "labels[\"k\"]");
}

TEST(Utf8GuardTest, NamesNestedRepeatedAndMapFields) {
  content::WriteContentRequest ok;
  ok.set_ref("ingest-1");
  ok.set_data(std::string("\x00\xff", 2));
  (*ok.mutable_labels())["containerd.io/gc.ref"] = "sha256:ab";
  EXPECT_EQ(FindInvalidUtf8(ok), std::nullopt);

  content::ListContentRequest list;
  list.add_filters("name==a");
  list.add_filters(kBad);
  EXPECT_EQ(FindInvalidUtf8(list), "filters[1]");

  content::UpdateRequest update;
  update.mutable_info()->set_digest("sha256:ab");
  (*update.mutable_info()->mutable_labels())[kBad] = "v";
  EXPECT_EQ(FindInvalidUtf8(update), "info.labels[?] (key)");

  runtime::v1::CreateContainerRequest cc;
  cc.set_pod_sandbox_id("p");
  cc.mutable_config()->add_args("sh");
  auto* env = cc.mutable_config()->add_envs();
  env->set_key("A");
  env->set_value(kBad);
  EXPECT_EQ(FindInvalidUtf8(cc), "config.envs[0].value");
}

}  // namespace
}  // namespace berth::services
