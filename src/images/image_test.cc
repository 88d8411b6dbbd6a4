#include "images/image.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "common/digest.h"

namespace berth::images {
namespace {

TEST(PlatformTest, NormalizeFormatAndMatch) {
  EXPECT_EQ(NormalizePlatform({"", "x86_64", ""}), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(NormalizePlatform({"Linux", "aarch64", "v8"}), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(NormalizePlatform({"linux", "armhf", ""}), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(FormatPlatform({"linux", "arm", "v7"}), "linux/arm/v7");
  EXPECT_EQ(FormatPlatform({"linux", "amd64", ""}), "linux/amd64");
  EXPECT_EQ(FormatPlatform({"", "amd64", ""}), "unknown");

  auto amd64 = PlatformMatcher::Only({"linux", "amd64", ""});
  EXPECT_TRUE(amd64.Match({"linux", "amd64", ""}));
  EXPECT_TRUE(amd64.Match({"linux", "386", ""}));
  EXPECT_FALSE(amd64.Match({"linux", "arm64", ""}));
  EXPECT_TRUE(amd64.Less({"linux", "amd64", ""}, {"linux", "386", ""}));
  EXPECT_FALSE(amd64.Less({"linux", "386", ""}, {"linux", "amd64", ""}));

  auto arm64 = PlatformMatcher::Only({"linux", "arm64", "v8"});
  EXPECT_TRUE(arm64.Match({"linux", "arm64", ""}));
  EXPECT_TRUE(arm64.Match({"linux", "arm", "v7"}));
  EXPECT_FALSE(arm64.Match({"linux", "amd64", ""}));
}

TEST(PlatformTest, ParseSpecIsPlatformsParse) {
  Platform host = DefaultPlatform();
  EXPECT_EQ(*ParsePlatformSpec("linux/arm64"), (Platform{"linux", "arm64", ""}));
  EXPECT_EQ(*ParsePlatformSpec("linux/arm/v7"), (Platform{"linux", "arm", "v7"}));
  EXPECT_EQ(*ParsePlatformSpec("Linux/x86_64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(*ParsePlatformSpec("linux"),
            NormalizePlatform({"linux", host.architecture, host.variant}));
  EXPECT_EQ(*ParsePlatformSpec("arm64"), (Platform{host.os, "arm64", ""}));
  EXPECT_FALSE(ParsePlatformSpec("linux/*"));
  EXPECT_FALSE(ParsePlatformSpec("nosuchthing"));
  EXPECT_FALSE(ParsePlatformSpec("linux//amd64"));
  EXPECT_FALSE(ParsePlatformSpec("a/b/c/d"));
}

TEST(ImageTest, ChainIdChainsDiffIds) {
  EXPECT_EQ(ChainId({}), "");
  std::string a = Digest::FromBytes("a").String();
  std::string b = Digest::FromBytes("b").String();
  EXPECT_EQ(ChainId({a}), a);
  EXPECT_EQ(ChainId({a, b}), Digest::FromBytes(a + " " + b).String());
}

// A fake content store for the image walks.
class FakeStore {
 public:
  OciDescriptor Put(std::string media_type, std::string blob) {
    OciDescriptor d{std::move(media_type), Digest::FromBytes(blob).String(),
                    static_cast<int64_t>(blob.size()), std::nullopt};
    blobs_[d.digest] = std::move(blob);
    return d;
  }
  void Drop(const OciDescriptor& d) { blobs_.erase(d.digest); }
  BlobReader Reader() const {
    return [this](const OciDescriptor& d) -> Result<std::string> {
      auto it = blobs_.find(d.digest);
      if (it == blobs_.end()) return NotFound(fmt::format("content digest {}", d.digest));
      return it->second;
    };
  }
  BlobStat Stater() const {
    return [this](const OciDescriptor& d) -> Status {
      if (!blobs_.count(d.digest)) return NotFound(fmt::format("content digest {}", d.digest));
      return Ok();
    };
  }

 private:
  std::map<std::string, std::string> blobs_;
};

std::string DescJson(const OciDescriptor& d, std::string_view platform = "") {
  std::string out =
      fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{})", d.media_type, d.digest, d.size);
  if (!platform.empty()) out += fmt::format(R"(,"platform":{})", platform);
  return out + "}";
}

struct TestImage {
  OciDescriptor config, layer, manifest;
};

TestImage PutImage(FakeStore& store, std::string_view arch, std::string_view layer_data) {
  TestImage t;
  t.layer = store.Put("application/vnd.oci.image.layer.v1.tar", std::string(layer_data));
  std::string diff = Digest::FromBytes(layer_data).String();
  t.config = store.Put(std::string(kMediaTypeOciConfig),
                       fmt::format(R"({{"architecture":"{}","os":"linux","rootfs":{{"type":)"
                                   R"("layers","diff_ids":["{}"]}}}})",
                                   arch, diff));
  t.manifest = store.Put(std::string(kMediaTypeOciManifest),
                         fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})",
                                     DescJson(t.config), DescJson(t.layer)));
  return t;
}

TEST(ImageWalkTest, SingleManifestSizePlatformsCheckRootFs) {
  FakeStore store;
  auto img = PutImage(store, "amd64", "layer-bytes");
  auto host = PlatformMatcher::Only({"linux", "amd64", ""});

  auto size = ImageSize(store.Reader(), img.manifest, host);
  EXPECT_FALSE(size.error);
  EXPECT_EQ(size.size, img.manifest.size + img.config.size + img.layer.size);

  auto platforms = ImagePlatforms(store.Reader(), img.manifest);
  ASSERT_TRUE(platforms);
  ASSERT_EQ(platforms->size(), 1u);
  EXPECT_EQ(FormatPlatform((*platforms)[0]), "linux/amd64");

  auto check = CheckImage(store.Reader(), store.Stater(), img.manifest, host);
  ASSERT_TRUE(check);
  EXPECT_TRUE(check->available);
  EXPECT_EQ(check->required.size(), 2u);
  EXPECT_EQ(check->present.size(), 2u);
  EXPECT_TRUE(check->missing.empty());

  auto rootfs = ImageRootFs(store.Reader(), img.manifest, host);
  ASSERT_TRUE(rootfs);
  EXPECT_EQ(*rootfs, std::vector<std::string>{Digest::FromBytes("layer-bytes").String()});

  // A root manifest is used whatever its platform.
  auto arm = PlatformMatcher::Only({"linux", "arm64", ""});
  EXPECT_TRUE(ImageManifest(store.Reader(), img.manifest, arm));
}

TEST(ImageWalkTest, MissingLayerIsIncompleteAndSizeStopsAtMissingBlob) {
  FakeStore store;
  auto img = PutImage(store, "amd64", "layer-bytes");
  store.Drop(img.layer);
  auto host = PlatformMatcher::Only({"linux", "amd64", ""});
  auto check = CheckImage(store.Reader(), store.Stater(), img.manifest, host);
  ASSERT_TRUE(check);
  EXPECT_TRUE(check->available);
  EXPECT_EQ(check->present.size(), 1u);
  EXPECT_EQ(check->missing.size(), 1u);
  // Layers have no children: the size still counts the layer's descriptor.
  auto size = ImageSize(store.Reader(), img.manifest, host);
  EXPECT_FALSE(size.error);
  EXPECT_EQ(size.size, img.manifest.size + img.config.size + img.layer.size);

  store.Drop(img.manifest);
  auto gone = CheckImage(store.Reader(), store.Stater(), img.manifest, host);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->available);
  EXPECT_EQ(gone->missing.size(), 1u);
  auto partial = ImageSize(store.Reader(), img.manifest, host);
  ASSERT_TRUE(partial.error);
  EXPECT_TRUE(partial.error->Is(Errc::kNotFound));
  EXPECT_EQ(partial.size, img.manifest.size);
}

TEST(ImageWalkTest, IndexPicksHostPlatformAndListsAll) {
  FakeStore store;
  auto amd = PutImage(store, "amd64", "amd-layer");
  auto arm = PutImage(store, "arm64", "arm-layer-longer");
  auto index =
      store.Put(std::string(kMediaTypeOciIndex),
                fmt::format(R"({{"schemaVersion":2,"manifests":[{},{}]}})",
                            DescJson(arm.manifest, R"({"architecture":"arm64","os":"linux"})"),
                            DescJson(amd.manifest, R"({"architecture":"amd64","os":"linux"})")));
  auto host = PlatformMatcher::Only({"linux", "amd64", ""});
  auto size = ImageSize(store.Reader(), index, host);
  EXPECT_FALSE(size.error);
  EXPECT_EQ(size.size, index.size + amd.manifest.size + amd.config.size + amd.layer.size);

  auto platforms = ImagePlatforms(store.Reader(), index);
  ASSERT_TRUE(platforms);
  ASSERT_EQ(platforms->size(), 2u);
  EXPECT_EQ(FormatPlatform((*platforms)[0]), "linux/arm64");
  EXPECT_EQ(FormatPlatform((*platforms)[1]), "linux/amd64");

  auto rootfs = ImageRootFs(store.Reader(), index, host);
  ASSERT_TRUE(rootfs);
  EXPECT_EQ(*rootfs, std::vector<std::string>{Digest::FromBytes("amd-layer").String()});

  auto s390 = PlatformMatcher::Only({"linux", "s390x", ""});
  auto none = ImageManifest(store.Reader(), index, s390);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().ToString(),
            fmt::format("no match for platform in manifest {}: not found", index.digest));
  auto nosize = ImageSize(store.Reader(), index, s390);
  ASSERT_TRUE(nosize.error);
  EXPECT_EQ(nosize.error->ToString(), "no match for platform in manifest: not found");
  EXPECT_EQ(nosize.size, index.size);
  auto unavailable = CheckImage(store.Reader(), store.Stater(), index, s390);
  ASSERT_TRUE(unavailable);
  EXPECT_FALSE(unavailable->available);
}

TEST(ImageWalkTest, MediaTypeMismatchAndBadJsonAreErrors) {
  FakeStore store;
  auto index_as_manifest =
      store.Put(std::string(kMediaTypeOciManifest), R"({"schemaVersion":2,"manifests":[]})");
  auto host = PlatformMatcher::Only({"linux", "amd64", ""});
  auto r = ImageManifest(store.Reader(), index_as_manifest, host);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().ToString(),
            fmt::format("manifest: invalid desc {}: media-type: expected manifest but found index "
                        "(application/vnd.oci.image.manifest.v1+json)",
                        index_as_manifest.digest));
  auto check = CheckImage(store.Reader(), store.Stater(), index_as_manifest, host);
  ASSERT_FALSE(check);

  auto garbage = store.Put(std::string(kMediaTypeOciManifest), "not json");
  EXPECT_FALSE(ImageSize(store.Reader(), garbage, host).error->Is(Errc::kNotFound));

  auto bad_size = store.Put(std::string(kMediaTypeOciManifest),
                            R"({"config":{"mediaType":"x","digest":"sha256:1","size":"big"}})");
  auto children = ImageChildren(store.Reader(), bad_size);
  ASSERT_FALSE(children);
  EXPECT_NE(children.error().ToString().find("cannot unmarshal string"), std::string::npos);

  OciDescriptor unknown{"application/x-unknown", "sha256:00", 3, std::nullopt};
  auto unexpected = ImageManifest(store.Reader(), unknown, host);
  ASSERT_FALSE(unexpected);
  EXPECT_TRUE(unexpected.error().Is(Errc::kNotFound));
  // Unknown types have no children; their size still counts.
  auto size = ImageSize(store.Reader(), unknown, host);
  EXPECT_FALSE(size.error);
  EXPECT_EQ(size.size, 3);
}

// A config nested 200,000 deep (issue 13): refused as Go's encoding/json refuses it, before
// nlohmann builds (and would recursively destroy or dump) the tree.
TEST(ImageWalkTest, DeeplyNestedConfigIsRefused) {
  FakeStore store;
  auto layer = store.Put("application/vnd.oci.image.layer.v1.tar", "layer");
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto config = store.Put(std::string(kMediaTypeOciConfig),
                          R"({"rootfs":{"type":"layers","diff_ids":[]},"x":)" + deep + "}");
  auto manifest = store.Put(std::string(kMediaTypeOciManifest),
                            fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})",
                                        DescJson(config), DescJson(layer)));
  auto host = PlatformMatcher::Only({"linux", "amd64", ""});
  auto rootfs = ImageRootFs(store.Reader(), manifest, host);
  ASSERT_FALSE(rootfs);
  EXPECT_NE(rootfs.error().ToString().find("exceeded max depth"), std::string::npos)
      << rootfs.error().ToString();
}

}  // namespace
}  // namespace berth::images
