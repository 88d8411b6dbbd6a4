// CRI integration: runtime information (Version, Status with NetworkReady following the CNI conf
// dir, UpdateRuntimeConfig rendering conf_template) and the ImageService (PullImage by tag, by
// digest and with credentials against an htpasswd registry; ImageStatus by ID, ID prefix and
// reference; ListImages; RemoveImage; ImageFsInfo), cross-checked with the real ctr.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "common/digest.h"
#include "cri_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

const v1::RuntimeCondition* Condition(const v1::StatusResponse& s, const std::string& type) {
  for (const auto& c : s.status().conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

v1::StatusResponse Status(CriEnv& env) {
  v1::StatusRequest req;
  req.set_verbose(true);
  v1::StatusResponse resp;
  auto st = env.Rt().Status(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << Describe(st);
  return resp;
}

bool NetworkReady(CriEnv& env) {
  auto s = Status(env);
  const auto* c = Condition(s, "NetworkReady");
  return c != nullptr && c->status();
}

class CriRuntimeIT : public CriTest {};

TEST_F(CriRuntimeIT, VersionAnswersAsContainerd) {
  v1::VersionRequest req;
  req.set_version("v1");
  v1::VersionResponse resp;
  auto st = Rt().Version(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(resp.version(), "0.1.0");
  EXPECT_EQ(resp.runtime_name(), "containerd");
  EXPECT_FALSE(resp.runtime_version().empty());
  EXPECT_EQ(resp.runtime_api_version(), "v1");
}

TEST_F(CriRuntimeIT, UnimplementedRpcsSayUnimplemented) {
  v1::CheckpointContainerRequest req;
  v1::CheckpointContainerResponse resp;
  auto st = Rt().CheckpointContainer(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED) << Describe(st);
}

// The environment started berthd with an empty conf_dir and a conf_template, took Status, sent
// UpdateRuntimeConfig with its pod CIDR and took Status again.
TEST_F(CriRuntimeIT, NetworkReadyFollowsTheConfDirWithoutRestart) {
  const auto* runtime = Condition(E().StatusBeforeConf(), "RuntimeReady");
  ASSERT_NE(runtime, nullptr);
  EXPECT_TRUE(runtime->status());
  const auto* before = Condition(E().StatusBeforeConf(), "NetworkReady");
  ASSERT_NE(before, nullptr);
  EXPECT_FALSE(before->status());
  EXPECT_EQ(before->reason(), "NetworkPluginNotReady");
  EXPECT_EQ(before->message(), "Network plugin returns error: cni plugin not initialized");
  const auto* after = Condition(E().StatusAfterConf(), "NetworkReady");
  ASSERT_NE(after, nullptr);
  EXPECT_TRUE(after->status()) << after->reason() << ": " << after->message();
  EXPECT_EQ(At(E().StatusAfterConf().info(), "lastCNILoadStatus"), "OK");

  // UpdateRuntimeConfig rendered the template into 10-containerd-net.conflist (0644).
  const std::string conf = E().ConfDir() + "/10-containerd-net.conflist";
  struct stat st {};
  ASSERT_EQ(::stat(conf.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  auto rendered = nlohmann::json::parse(ReadText(conf), nullptr, false);
  ASSERT_FALSE(rendered.is_discarded()) << ReadText(conf);
  const auto& ipam = rendered["plugins"][0]["ipam"];
  EXPECT_EQ(ipam["ranges"], nlohmann::json::parse(R"([[{"subnet": ")" + E().Subnet() + R"("}]])"));
  EXPECT_EQ(ipam["routes"], nlohmann::json::parse(R"([{"dst": "0.0.0.0/0"}])"));
  auto cniconfig = nlohmann::json::parse(At(Status(E()).info(), "cniconfig"), nullptr, false);
  EXPECT_NE(cniconfig.dump().find("berth-it"), std::string::npos) << cniconfig.dump();

  // Once a network is loaded, UpdateRuntimeConfig changes nothing.
  const std::string text = ReadText(conf);
  v1::UpdateRuntimeConfigRequest ureq;
  ureq.mutable_runtime_config()->mutable_network_config()->set_pod_cidr("10.99.0.0/24");
  v1::UpdateRuntimeConfigResponse uresp;
  auto rpc = Rt().UpdateRuntimeConfig(Ctx().get(), ureq, &uresp);
  EXPECT_TRUE(rpc.ok()) << Describe(rpc);
  EXPECT_EQ(ReadText(conf), text);

  // The conflist taken away: not ready; written again: ready, without restarting berthd.
  const std::string saved = E().Tmp() + "/saved.conflist";
  ASSERT_EQ(::rename(conf.c_str(), saved.c_str()), 0);
  struct Restore {
    std::string conf;
    std::string text;
    ~Restore() {
      if (ReadText(conf) != text) (void)fs::WriteFileAtomic(conf, text);
    }
  } restore{conf, text};
  auto gone = Status(E());
  const auto* down = Condition(gone, "NetworkReady");
  ASSERT_NE(down, nullptr);
  EXPECT_FALSE(down->status());
  EXPECT_EQ(down->reason(), "NetworkPluginNotReady");
  EXPECT_NE(At(gone.info(), "lastCNILoadStatus"), "OK");
  ASSERT_TRUE(fs::WriteFileAtomic(conf, text));
  EXPECT_TRUE(NetworkReady(E()));
}

class CriImageIT : public CriTest {
 protected:
  v1::Image ImageStatus(const std::string& ref, bool* found = nullptr) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    v1::ImageStatusResponse resp;
    auto st = Img().ImageStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "ImageStatus " << ref << ": " << Describe(st);
    if (found != nullptr) *found = resp.has_image();
    return resp.image();
  }
  grpc::Status Pull(const std::string& ref, const v1::AuthConfig* auth, std::string* id) {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    if (auth != nullptr) *req.mutable_auth() = *auth;
    v1::PullImageResponse resp;
    auto st = Img().PullImage(Ctx().get(), req, &resp);
    if (id != nullptr) *id = resp.image_ref();
    return st;
  }
  grpc::Status Remove(const std::string& ref) {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(ref);
    v1::RemoveImageResponse resp;
    return Img().RemoveImage(Ctx().get(), req, &resp);
  }
  std::vector<std::string> CtrImages() {
    return Lines(E().D().Ctr({"images", "ls", "-q"}, "k8s.io").out);
  }
  static bool Has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  }
};

TEST_F(CriImageIT, PullByTagThenStatusByIdPrefixAndRefListAndCtr) {
  // The environment pulled busybox by tag with PullImage.
  const std::string ref = E().Image("busybox");
  const std::string id = E().ImageId("busybox");
  ASSERT_TRUE(id.starts_with("sha256:")) << id;
  ASSERT_EQ(id.size(), 71u);
  const std::string repo_digest =
      E().Reg().Addr() + "/test/busybox@" + FixtureManifestDigest("busybox");

  bool found = false;
  auto image = ImageStatus(ref, &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(image.id(), id);
  EXPECT_EQ(std::vector<std::string>(image.repo_tags().begin(), image.repo_tags().end()),
            std::vector<std::string>{ref});
  EXPECT_EQ(std::vector<std::string>(image.repo_digests().begin(), image.repo_digests().end()),
            std::vector<std::string>{repo_digest});
  EXPECT_GT(image.size(), 0u);
  EXPECT_FALSE(image.has_uid());  // no USER in the image
  EXPECT_EQ(image.username(), "");

  for (const std::string& by : {id, id.substr(7), id.substr(7, 12), id.substr(0, 19), repo_digest,
                                E().Reg().Addr() + "/test/busybox"}) {
    auto again = ImageStatus(by, &found);
    EXPECT_TRUE(found) << "ImageStatus " << by;
    EXPECT_EQ(again.id(), id) << "ImageStatus " << by;
  }
  // A missing image: an empty response, no error.
  ImageStatus(E().Reg().Addr() + "/test/nosuch:latest", &found);
  EXPECT_FALSE(found);
  ImageStatus("sha256:" + std::string(64, '0'), &found);
  EXPECT_FALSE(found);

  // USER as a name and as a number.
  auto cri = ImageStatus(E().Image("cri"), &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(cri.username(), "berth");
  EXPECT_FALSE(cri.has_uid());

  v1::ListImagesResponse list;
  auto st = Img().ListImages(Ctx().get(), {}, &list);
  ASSERT_TRUE(st.ok()) << Describe(st);
  bool listed = false;
  for (const auto& i : list.images()) {
    if (i.id() != id) continue;
    listed = true;
    EXPECT_EQ(i.repo_tags_size(), 1);
    EXPECT_EQ(i.repo_digests_size(), 1);
    EXPECT_EQ(i.size(), image.size());
  }
  EXPECT_TRUE(listed);

  // The same images, seen by the real ctr in k8s.io: the tag, the repo digest and the ID.
  auto ctr = CtrImages();
  EXPECT_TRUE(Has(ctr, ref)) << E().D().Ctr({"images", "ls"}, "k8s.io").out;
  EXPECT_TRUE(Has(ctr, repo_digest));
  EXPECT_TRUE(Has(ctr, id));
  auto labels = E().D().Ctr({"images", "ls", "name==" + ref}, "k8s.io").out;
  EXPECT_NE(labels.find("io.cri-containerd.image=managed"), std::string::npos) << labels;
}

TEST_F(CriImageIT, PullByDigestThenTagThenRemove) {
  const std::string digest_ref = E().Reg().Addr() + "/test/pause@" + FixtureManifestDigest("pause");
  const std::string tag_ref = E().Image("pause");
  std::string id;
  auto st = Pull(digest_ref, nullptr, &id);
  ASSERT_TRUE(st.ok()) << Describe(st);
  bool found = false;
  auto image = ImageStatus(digest_ref, &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(image.id(), id);
  EXPECT_EQ(image.repo_tags_size(), 0);
  EXPECT_EQ(std::vector<std::string>(image.repo_digests().begin(), image.repo_digests().end()),
            std::vector<std::string>{digest_ref});
  ASSERT_TRUE(image.has_uid());  // USER 65534
  EXPECT_EQ(image.uid().value(), 65534);
  EXPECT_EQ(image.username(), "");

  std::string id2;
  st = Pull(tag_ref, nullptr, &id2);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(id2, id);
  image = ImageStatus(id, &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(std::vector<std::string>(image.repo_tags().begin(), image.repo_tags().end()),
            std::vector<std::string>{tag_ref});
  EXPECT_TRUE(Has(CtrImages(), tag_ref));

  // RemoveImage by tag removes every record of the image.
  st = Remove(tag_ref);
  ASSERT_TRUE(st.ok()) << Describe(st);
  for (const std::string& by : {tag_ref, digest_ref, id}) {
    ImageStatus(by, &found);
    EXPECT_FALSE(found) << by;
  }
  auto ctr = CtrImages();
  EXPECT_FALSE(Has(ctr, tag_ref));
  EXPECT_FALSE(Has(ctr, digest_ref));
  EXPECT_FALSE(Has(ctr, id));
  // Missing images: success.
  for (const std::string& by : {tag_ref, id, std::string("docker.io/library/never-pulled:1")}) {
    st = Remove(by);
    EXPECT_TRUE(st.ok()) << by << ": " << Describe(st);
  }
}

TEST_F(CriImageIT, PullWithCredentialsFromAnHtpasswdRegistry) {
  const std::string script = std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/registry.sh";
  const std::string htpasswd = E().Tmp() + "/htpasswd";
  ASSERT_EQ(Exec({script, "htpasswd", htpasswd, "alice", "s3cret"}).exit_code, 0);
  auto reg = Registry::Start({.htpasswd = htpasswd,
                              .creds = "alice:s3cret",
                              .tags = {"busybox"},
                              .netns = E().Net().Path()});
  ASSERT_TRUE(reg);
  const std::string host_dir = E().Tmp() + "/certs.d/" + reg->Addr();
  ASSERT_TRUE(fs::MkdirAll(host_dir, 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(host_dir + "/hosts.toml",
                                  "server = \"http://" + reg->Addr() + "\"\n[host.\"http://" +
                                      reg->Addr() +
                                      "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"));
  const std::string ref = reg->Ref("busybox");

  // Without credentials, and with a wrong password: refused.
  auto st = Pull(ref, nullptr, nullptr);
  EXPECT_FALSE(st.ok());
  v1::AuthConfig wrong;
  wrong.set_username("alice");
  wrong.set_password("wrong");
  st = Pull(ref, &wrong, nullptr);
  EXPECT_FALSE(st.ok());
  bool found = true;
  ImageStatus(ref, &found);
  EXPECT_FALSE(found);

  // username + password.
  v1::AuthConfig auth;
  auth.set_username("alice");
  auth.set_password("s3cret");
  auth.set_server_address(reg->Addr());
  std::string id;
  st = Pull(ref, &auth, &id);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(id, E().ImageId("busybox"));  // the same image as the fixture registry's
  ImageStatus(ref, &found);
  EXPECT_TRUE(found);
  // Drop only this reference (RemoveImage would drop every record of the image).
  ASSERT_EQ(E().D().Ctr({"images", "rm", "--sync", ref}, "k8s.io").exit_code, 0);
  ImageStatus(ref, &found);
  EXPECT_FALSE(found);

  // `auth`: base64 of "user:password".
  v1::AuthConfig encoded;
  encoded.set_auth("YWxpY2U6czNjcmV0");  // alice:s3cret
  st = Pull(ref, &encoded, &id);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ImageStatus(ref, &found);
  EXPECT_TRUE(found);
  EXPECT_EQ(E().D().Ctr({"images", "rm", "--sync", ref}, "k8s.io").exit_code, 0);
  // The fixture registry's records of the same image are untouched.
  ImageStatus(E().Image("busybox"), &found);
  EXPECT_TRUE(found);
}

// containerd resolves an ID prefix through a digest set: a prefix matching two images is an
// error (not one of them, not "missing").
TEST_F(CriImageIT, AmbiguousImageIdPrefixIsAnError) {
  // A twin of busybox whose ID starts with the same hex digit: busybox's layers, a config that
  // differs by a label chosen until the two config digests share that digit.
  const std::string busybox_id = E().ImageId("busybox");
  ASSERT_EQ(busybox_id.size(), 71u);
  const std::string src = Fixtures() + "/oci/blobs/sha256/";
  auto manifest = nlohmann::json::parse(ReadText(src + FixtureManifestDigest("busybox").substr(7)));
  auto config = nlohmann::json::parse(
      ReadText(src + manifest["config"]["digest"].get<std::string>().substr(7)));
  std::string config_text;
  std::string config_digest;
  for (int nonce = 0; config_digest.empty() || config_digest[7] != busybox_id[7]; ++nonce) {
    ASSERT_LT(nonce, 1000);
    config["config"]["Labels"]["berth.twin"] = std::to_string(nonce);
    config_text = config.dump();
    config_digest = Digest::FromBytes(config_text).String();
  }
  const std::string layout = E().Tmp() + "/twin-oci";
  const std::string blobs = layout + "/blobs/sha256/";
  ASSERT_TRUE(fs::MkdirAll(blobs, 0755));
  ASSERT_TRUE(fs::WriteFileAtomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  ASSERT_TRUE(fs::WriteFileAtomic(blobs + config_digest.substr(7), config_text));
  for (const auto& layer : manifest["layers"]) {
    const std::string hex = layer["digest"].get<std::string>().substr(7);
    ASSERT_TRUE(fs::WriteFileAtomic(blobs + hex, ReadText(src + hex)));
  }
  manifest["config"]["digest"] = config_digest;
  manifest["config"]["size"] = config_text.size();
  const std::string manifest_text = manifest.dump();
  const std::string manifest_digest = Digest::FromBytes(manifest_text).String();
  ASSERT_TRUE(fs::WriteFileAtomic(blobs + manifest_digest.substr(7), manifest_text));
  nlohmann::json index = {{"schemaVersion", 2},
                          {"manifests",
                           {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"digest", manifest_digest},
                             {"size", manifest_text.size()},
                             {"annotations", {{"org.opencontainers.image.ref.name", "twin"}}}}}}};
  ASSERT_TRUE(fs::WriteFileAtomic(layout + "/index.json", index.dump()));
  ASSERT_TRUE(E().Reg().Push(layout));
  std::string twin_id;
  auto st = Pull(E().Image("twin"), nullptr, &twin_id);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(twin_id, config_digest);

  // The shared first digit, bare and as sha256:<digit>: ambiguous.
  for (const std::string& prefix : {busybox_id.substr(7, 1), busybox_id.substr(0, 8)}) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(prefix);
    v1::ImageStatusResponse resp;
    st = Img().ImageStatus(Ctx().get(), req, &resp);
    EXPECT_FALSE(st.ok()) << "ImageStatus " << prefix << " chose " << resp.image().id()
                          << " of two images";
    EXPECT_NE(st.error_message().find("ambiguous"), std::string::npos) << Describe(st);
  }
  // Long enough to tell them apart: each its own.
  size_t common = 0;
  while (busybox_id[7 + common] == twin_id[7 + common]) ++common;
  bool found = false;
  EXPECT_EQ(ImageStatus(busybox_id.substr(7, common + 1), &found).id(), busybox_id);
  EXPECT_EQ(ImageStatus(twin_id.substr(7, common + 1), &found).id(), twin_id);
  st = Remove(E().Image("twin"));
  EXPECT_TRUE(st.ok()) << Describe(st);
  ImageStatus(busybox_id, &found);
  EXPECT_TRUE(found);
}

TEST_F(CriImageIT, PullOfAMissingImageFails) {
  std::string id;
  auto st = Pull(E().Reg().Addr() + "/test/never-pushed:latest", nullptr, &id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("not found"), std::string::npos) << Describe(st);
}

TEST_F(CriImageIT, ImageFsInfoReportsTheSnapshotterFilesystem) {
  v1::ImageFsInfoResponse resp;
  auto st = Img().ImageFsInfo(Ctx().get(), {}, &resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(resp.image_filesystems_size(), 1);
  const auto& fs = resp.image_filesystems(0);
  EXPECT_GT(fs.timestamp(), 0);
  EXPECT_EQ(fs.fs_id().mountpoint(), E().D().Root() + "/io.containerd.snapshotter.v1.overlayfs");
  EXPECT_GT(fs.used_bytes().value(), 0u);
  EXPECT_GT(fs.inodes_used().value(), 0u);
}

}  // namespace
}  // namespace berth::testing
