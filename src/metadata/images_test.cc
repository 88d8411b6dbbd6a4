#include "metadata/images.h"

#include "metadata/testing.h"

namespace berth::metadata {
namespace {

class ImagesTest : public MetadataFixture {
 protected:
  Image Make(const std::string& name) {
    return {.name = name,
            .labels = {{"l", "1"}},
            .target = {.media_type = "application/vnd.oci.image.manifest.v1+json",
                       .digest = Digest::FromBytes(name),
                       .size = 10}};
  }
};

TEST_F(ImagesTest, CreateGetListUpdateDelete) {
  ImageStore images(*db_);
  Context ctx{.ns = "ns"};
  auto c = images.Create(ctx, Make("docker.io/library/a:1"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->created_at, c->updated_at);
  ASSERT_TRUE(images.Create(ctx, Make("b")));
  auto dup = images.Create(ctx, Make("b"));
  ASSERT_FALSE(dup);
  EXPECT_TRUE(dup.error().Is(Errc::kAlreadyExists));
  auto got = images.Get(ctx, "docker.io/library/a:1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->target.size, 10);
  auto list = images.List(ctx, {"name~=^docker.io/"});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  Image upd{.name = "b", .labels = {{"new", "x"}}};
  auto u = images.Update(ctx, upd, {"labels.new", "labels.l"});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->labels, (Labels{{"new", "x"}}));
  EXPECT_EQ(u->target.size, 10) << "target untouched";
  auto bad = images.Update(ctx, upd, {"name"});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(images.Update(ctx, Image{.name = "zzz"}, {}).error().Is(Errc::kNotFound));
  ASSERT_TRUE(images.Delete(ctx, "b"));
  EXPECT_TRUE(images.Delete(ctx, "b").error().Is(Errc::kNotFound));
  EXPECT_TRUE(images.List({.ns = "other"}, {})->empty());
}

TEST_F(ImagesTest, Validation) {
  ImageStore images(*db_);
  Context ctx{.ns = "ns"};
  Image no_size = Make("x");
  no_size.target.size = 0;
  EXPECT_TRUE(images.Create(ctx, no_size).error().Is(Errc::kInvalidArgument));
  Image no_media = Make("x");
  no_media.target.media_type.clear();
  EXPECT_TRUE(images.Create(ctx, no_media).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(images.Create(ctx, Make("")).error().Is(Errc::kInvalidArgument));
}

}  // namespace
}  // namespace berth::metadata
