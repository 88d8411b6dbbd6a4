// The pure parts of image import/export: names, archive JSON, entry names, platforms.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/archive.h"

namespace berth::client::archive {
namespace {

TEST(ArchiveNames, NormalizeDockerRef) {
  EXPECT_EQ(*NormalizeDockerRef("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(*NormalizeDockerRef("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(*NormalizeDockerRef("user/app:v1"), "docker.io/user/app:v1");
  EXPECT_EQ(*NormalizeDockerRef("localhost:5000/x"), "localhost:5000/x:latest");
  EXPECT_FALSE(NormalizeDockerRef("Busybox").has_value());
  EXPECT_FALSE(NormalizeDockerRef("").has_value());
  auto bad = NormalizeDockerRef("a b");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().ToString().find("a b"), std::string::npos);
}

TEST(ArchiveNames, FamiliarizeRef) {
  EXPECT_EQ(*FamiliarizeRef("docker.io/library/busybox:latest"), "busybox:latest");
  EXPECT_EQ(*FamiliarizeRef("docker.io/berth/busybox:latest"), "berth/busybox:latest");
  EXPECT_EQ(*FamiliarizeRef("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
  EXPECT_FALSE(FamiliarizeRef("UPPER/case").has_value());
}

TEST(ArchiveNames, OciRefName) {
  EXPECT_EQ(OciRefName("docker.io/library/busybox:latest"), "latest");
  EXPECT_EQ(OciRefName("localhost:5000/foo:tag"), "tag");
  const std::string d = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(OciRefName("docker.io/library/busybox@" + d), "@" + d);
  EXPECT_EQ(OciRefName("docker.io/library/busybox:1@" + d), "1@" + d);
  EXPECT_EQ(OciRefName("docker.io/library/busybox"), "");
  // No valid host (non-numeric port): the name itself, as url.Parse fails in Go.
  EXPECT_EQ(OciRefName("busybox:latest"), "busybox:latest");
  EXPECT_EQ(OciRefName("foo"), "");
}

TEST(ArchiveNames, RefPrefixes) {
  EXPECT_EQ(AddRefPrefix("import-2026-01-01", "latest"), "import-2026-01-01:latest");
  EXPECT_EQ(AddRefPrefix("p", "docker.io/x/y:1"), "docker.io/x/y:1");
  EXPECT_EQ(FilterRefPrefix("foo/bar", "latest"), "foo/bar:latest");
  EXPECT_EQ(FilterRefPrefix("foo/bar", "foo/bar:1"), "foo/bar:1");
  EXPECT_EQ(FilterRefPrefix("foo/bar", "foo/bar@sha256:x"), "foo/bar@sha256:x");
  EXPECT_EQ(FilterRefPrefix("foo/bar", "foo/barista:1"), "");
  EXPECT_EQ(FilterRefPrefix("foo/bar", "other/x:1"), "");
  EXPECT_TRUE(DefaultImportPrefix().starts_with("import-"));
  EXPECT_EQ(DefaultImportPrefix().size(), std::string("import-2026-01-01").size());
}

TEST(ArchiveNames, BlobPaths) {
  const std::string hex(64, 'b');
  EXPECT_EQ(*BlobPath("sha256:" + hex), "blobs/sha256/" + hex);
  EXPECT_FALSE(BlobPath("sha256:xyz").has_value());
  EXPECT_EQ(DigestOfBlobPath("blobs/sha256/" + hex), "sha256:" + hex);
  EXPECT_EQ(DigestOfBlobPath("blobs/sha256/short"), "");
  EXPECT_EQ(DigestOfBlobPath("abc/layer.tar"), "");
}

TEST(ArchiveEntries, CleanEntryName) {
  EXPECT_EQ(*CleanEntryName("./index.json"), "index.json");
  EXPECT_EQ(*CleanEntryName("blobs//sha256/./x"), "blobs/sha256/x");
  EXPECT_EQ(*CleanEntryName("a/../b/layer.tar"), "b/layer.tar");
  EXPECT_EQ(*CleanEntryName("blobs/"), "blobs");
  for (const char* bad : {"../etc/passwd", "/etc/passwd", "a/../../x", ""}) {
    auto r = CleanEntryName(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
  }
}

TEST(ArchiveEntries, DetectLayerMediaType) {
  EXPECT_EQ(DetectLayerMediaType(""), kMediaTypeDockerLayer);
  EXPECT_EQ(DetectLayerMediaType(std::string("\x1f\x8b\x08\0\0", 5)), kMediaTypeDockerLayerGzip);
  EXPECT_EQ(DetectLayerMediaType("\x28\xb5\x2f\xfd rest"), kMediaTypeDockerLayerGzip);
  EXPECT_EQ(DetectLayerMediaType("bin/\0\0\0\0\0\0"), kMediaTypeDockerLayer);
}

TEST(ArchiveJson, IndexRoundTripInGoFieldOrder) {
  const std::string hex(64, 'c');
  Descriptor d{.media_type = std::string(images::kMediaTypeOciManifest),
               .digest = "sha256:" + hex,
               .size = 42,
               .annotations = {{"org.opencontainers.image.ref.name", "latest"},
                               {"io.containerd.image.name", "docker.io/a/b:<x>"}},
               .platform = images::Platform{.os = "linux", .architecture = "amd64"}};
  std::string json = IndexJson({d});
  EXPECT_EQ(json,
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
            "vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:" +
                hex +
                "\",\"size\":42,\"annotations\":{\"io.containerd.image.name\":\"docker.io/a/"
                "b:\\u003cx\\u003e\",\"org.opencontainers.image.ref.name\":\"latest\"},"
                "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}");
  auto parsed = ParseIndex(json);
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].digest, d.digest);
  EXPECT_EQ((*parsed)[0].annotations, d.annotations);
  EXPECT_EQ((*parsed)[0].platform, d.platform);
}

TEST(ArchiveJson, BadDocumentsAreInvalidArgument) {
  const std::vector<std::string> bads = {
      "{",
      "[]",
      R"({"manifests":{}})",
      R"({"manifests":[{"digest":"x"}]})",
      R"({"manifests":[{"digest":"sha256:ab"}]})",  // a short digest
      R"({"manifests":[{"digest":"sha256:)" + std::string(64, 'a') + R"(","size":-1}]})",
  };
  for (const auto& bad : bads) {
    auto r = ParseIndex(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
  }
  EXPECT_FALSE(ParseDockerManifests("{}").has_value());
  EXPECT_FALSE(ParseDockerManifests("[{\"Layers\":\"x\"}]").has_value());
  EXPECT_FALSE(ParseOciLayout("nope").has_value());
  EXPECT_EQ(*ParseOciLayout(OciLayoutJson()), "1.0.0");
  EXPECT_EQ(OciLayoutJson(), "{\"imageLayoutVersion\":\"1.0.0\"}");
}

TEST(ArchiveJson, DockerManifests) {
  std::string json = DockerManifestsJson(
      {{.config = "blobs/sha256/c", .repo_tags = {"busybox:latest"}, .layers = {"blobs/sha256/l"}},
       {.config = "blobs/sha256/d"}});
  EXPECT_EQ(json,
            "[{\"Config\":\"blobs/sha256/c\",\"RepoTags\":[\"busybox:latest\"],\"Layers\":["
            "\"blobs/sha256/l\"]},{\"Config\":\"blobs/sha256/d\",\"RepoTags\":null,\"Layers\":"
            "null}]");
  auto parsed = ParseDockerManifests(json);
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].repo_tags, std::vector<std::string>{"busybox:latest"});
  EXPECT_TRUE((*parsed)[1].layers.empty());
}

TEST(ArchiveJson, DockerSchema2Manifest) {
  const std::string c = "sha256:" + std::string(64, '1');
  const std::string l = "sha256:" + std::string(64, '2');
  std::string json = DockerSchema2ManifestJson(
      {.media_type = std::string(images::kMediaTypeDockerConfig), .digest = c, .size = 3},
      {{.media_type = std::string(kMediaTypeDockerLayer), .digest = l, .size = 4}});
  EXPECT_EQ(json,
            "{\"schemaVersion\":2,\"mediaType\":\"application/"
            "vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
            "\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" +
                c +
                "\",\"size\":3},\"layers\":[{\"mediaType\":\"application/"
                "vnd.docker.image.rootfs.diff.tar\",\"digest\":\"" +
                l + "\",\"size\":4}]}");
}

TEST(ArchivePlatforms, StrictMatcher) {
  StrictMatcher m(
      {{.os = "linux", .architecture = "arm64"}, {.os = "linux", .architecture = "amd64"}});
  EXPECT_TRUE(m.Match({.os = "linux", .architecture = "amd64"}));
  EXPECT_TRUE(m.Match({.os = "linux", .architecture = "aarch64", .variant = "v8"}));
  EXPECT_FALSE(m.Match({.os = "linux", .architecture = "386"}));  // Only() would take it
  EXPECT_TRUE(
      m.Less({.os = "linux", .architecture = "arm64"}, {.os = "linux", .architecture = "amd64"}));
  EXPECT_FALSE(
      m.Less({.os = "linux", .architecture = "amd64"}, {.os = "linux", .architecture = "arm64"}));
}

}  // namespace
}  // namespace berth::client::archive
