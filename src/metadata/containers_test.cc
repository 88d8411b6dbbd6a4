#include "metadata/containers.h"

#include "metadata/gc.h"
#include "metadata/namespaces.h"
#include "metadata/snapshot_store.h"
#include "metadata/testing.h"
#include "snapshots/native/native.h"

namespace berth::metadata {
namespace {

const Any kSpec{.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Spec",
                .value = R"({"ociVersion":"1.0.2"})"};

Container Make(const std::string& id) {
  return {.id = id,
          .labels = {{"l", "1"}},
          .image = "docker.io/library/busybox:latest",
          .runtime = {.name = "io.containerd.runc.v2",
                      .options = Any{.type_url = "containerd.runc.v1.Options", .value = ""}},
          .spec = kSpec,
          .snapshotter = "overlayfs",
          .snapshot_key = id};
}

class ContainersTest : public MetadataFixture {};

TEST_F(ContainersTest, AnyRoundTripsInProtobufWireForm) {
  Any any{.type_url = "containerd.runc.v1.Options", .value = std::string("\x08\x01\x00x", 4)};
  std::string enc = EncodeAny(any);
  // field 1 (0x0a), len 26, the URL, field 2 (0x12), len 4, the value.
  EXPECT_EQ(enc.substr(0, 2), std::string("\x0a\x1a"));
  auto dec = DecodeAny(enc);
  ASSERT_TRUE(dec) << dec.error().ToString();
  EXPECT_EQ(*dec, any);
  EXPECT_EQ(EncodeAny({}), "");
  EXPECT_EQ(*DecodeAny(""), Any{});
  EXPECT_TRUE(DecodeAny("\x0a\x10short").error().Is(Errc::kInvalidArgument));
}

TEST_F(ContainersTest, CreateGetListDelete) {
  ContainerStore store(*db_);
  Context ctx{.ns = "ns"};
  Container in = Make("c1");
  in.extensions["ext"] = {.type_url = "t", .value = "v"};
  auto c = store.Create(ctx, in);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->created_at, c->updated_at);
  EXPECT_NE(c->created_at, Timestamp{});
  auto got = store.Get(ctx, "c1");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(*got, *c) << "every field survives storage";
  EXPECT_EQ(got->extensions.at("ext").value, "v");
  EXPECT_EQ(got->runtime.options->type_url, "containerd.runc.v1.Options");

  auto dup = store.Create(ctx, Make("c1"));
  ASSERT_FALSE(dup);
  EXPECT_TRUE(dup.error().Is(Errc::kAlreadyExists));
  EXPECT_EQ(dup.error().ToString(), "container \"c1\": already exists");

  auto missing = store.Get(ctx, "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().ToString(), "container \"nope\" in namespace \"ns\": not found");
  EXPECT_TRUE(store.Get({.ns = "other"}, "c1").error().Is(Errc::kNotFound));
  EXPECT_TRUE(store.Get({}, "c1").error().Is(Errc::kFailedPrecondition));

  ASSERT_TRUE(store.Delete(ctx, "c1"));
  EXPECT_TRUE(store.Delete(ctx, "c1").error().Is(Errc::kNotFound));
  EXPECT_TRUE(store.Get(ctx, "c1").error().Is(Errc::kNotFound));
  EXPECT_TRUE(store.List(ctx, {})->empty());
}

TEST_F(ContainersTest, Filters) {
  ContainerStore store(*db_);
  Context ctx{.ns = "ns"};
  Container a = Make("a");
  a.labels = {{"x", "y"}, {"io.k.kind", "sandbox"}};
  Container b = Make("b");
  b.image = "";
  b.runtime.name = "io.containerd.berth.v2";
  ASSERT_TRUE(store.Create(ctx, a));
  ASSERT_TRUE(store.Create(ctx, b));
  auto ids = [&](std::vector<std::string> filters) {
    std::vector<std::string> out;
    auto list = store.List(ctx, filters);
    EXPECT_TRUE(list) << list.error().ToString();
    if (list) {
      for (const auto& c : *list) out.push_back(c.id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"a", "b"}));
  EXPECT_EQ(ids({"labels.x==y"}), V{"a"});
  EXPECT_EQ(ids({"labels.io.k.kind==sandbox"}), V{"a"});
  EXPECT_EQ(ids({"id==b"}), V{"b"});
  EXPECT_EQ(ids({"image"}), V{"a"}) << "an empty image is absent";
  EXPECT_EQ(ids({"runtime.name==io.containerd.berth.v2"}), V{"b"});
  EXPECT_EQ(ids({"id==a", "id==b"}), (V{"a", "b"})) << "several filters are OR-ed";
  EXPECT_EQ(ids({"id==a,labels.x==z"}), V{});
  EXPECT_EQ(ids({"image~=busybox"}), V{"a"});
  auto bad = store.List(ctx, {"id=="});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
}

TEST_F(ContainersTest, Validation) {
  ContainerStore store(*db_);
  Context ctx{.ns = "ns"};
  auto err = [&](Container c) {
    auto r = store.Create(ctx, std::move(c));
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().ToString();
  };
  Container bad_id = Make("bad id");
  EXPECT_EQ(err(bad_id).rfind("create container failed validation: container.ID: ", 0), 0u)
      << err(bad_id);
  Container no_runtime = Make("c");
  no_runtime.runtime.name.clear();
  EXPECT_EQ(err(no_runtime),
            "create container failed validation: container.Runtime.Name must be set: invalid "
            "argument");
  Container no_spec = Make("c");
  no_spec.spec.reset();
  EXPECT_EQ(err(no_spec),
            "create container failed validation: container.Spec must be set: invalid argument");
  Container no_snapshotter = Make("c");
  no_snapshotter.snapshotter.clear();
  EXPECT_EQ(err(no_snapshotter),
            "create container failed validation: container.Snapshotter must be set if "
            "container.SnapshotKey is set: invalid argument");
  Container bad_ext = Make("c");
  bad_ext.extensions[""] = {};
  EXPECT_EQ(err(bad_ext),
            "create container failed validation: container.Extension keys must not be "
            "zero-length: invalid argument");
  Container big_label = Make("c");
  big_label.labels["k"] = std::string(5000, 'v');
  EXPECT_TRUE(store.Create(ctx, big_label).error().Is(Errc::kInvalidArgument));
  // No snapshot at all is fine.
  Container bare = Make("bare");
  bare.snapshotter.clear();
  bare.snapshot_key.clear();
  EXPECT_TRUE(store.Create(ctx, bare));
}

TEST_F(ContainersTest, UpdateWithMasks) {
  ContainerStore store(*db_);
  Context ctx{.ns = "ns"};
  auto created = store.Create(ctx, Make("c"));
  ASSERT_TRUE(created);

  Container in{.id = "c", .labels = {{"new", "x"}}, .image = "other"};
  auto u = store.Update(ctx, in, {"labels.new", "labels.l"});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->labels, (Labels{{"new", "x"}})) << "labels.l absent from the input: deleted";
  EXPECT_EQ(u->image, "docker.io/library/busybox:latest") << "image not in the mask";
  EXPECT_EQ(u->created_at, created->created_at);
  EXPECT_GT(u->updated_at, created->updated_at);
  EXPECT_EQ(*store.Get(ctx, "c"), *u);

  auto img = store.Update(ctx, in, {"image"});
  ASSERT_TRUE(img);
  EXPECT_EQ(img->image, "other");

  auto bad = store.Update(ctx, in, {"runtime"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().ToString(), "cannot update \"runtime\" field on \"c\": invalid argument");

  // Empty mask: replace every mutable field, refuse changed immutable ones.
  Container full = Make("c");
  full.snapshotter = "native";
  EXPECT_EQ(store.Update(ctx, full, {}).error().ToString(),
            "container.Snapshotter field is immutable: invalid argument");
  full = Make("c");
  full.runtime.name = "io.containerd.berth.v2";
  EXPECT_EQ(store.Update(ctx, full, {}).error().ToString(),
            "container.Runtime.Name field is immutable: invalid argument");
  full = Make("c");
  full.labels = {{"only", "this"}};
  full.snapshot_key = "other-key";
  full.runtime.options.reset();  // not a mutable field: kept
  auto replaced = store.Update(ctx, full, {});
  ASSERT_TRUE(replaced) << replaced.error().ToString();
  EXPECT_EQ(replaced->labels, (Labels{{"only", "this"}}));
  EXPECT_EQ(replaced->snapshot_key, "other-key");
  EXPECT_TRUE(replaced->runtime.options.has_value());

  // Spec is required after an update too.
  Container no_spec{.id = "c"};
  EXPECT_TRUE(store.Update(ctx, no_spec, {"spec"}).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(store.Update(ctx, Container{}, {}).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(store.Update(ctx, Make("zzz"), {}).error().Is(Errc::kNotFound));
  EXPECT_TRUE(store.Update({.ns = "empty"}, Make("c"), {}).error().Is(Errc::kNotFound));
}

TEST_F(ContainersTest, NamespaceWithContainersCannotBeDeleted) {
  ContainerStore store(*db_);
  NamespaceStore namespaces(*db_);
  ASSERT_TRUE(store.Create({.ns = "ns"}, Make("c")));
  auto del = namespaces.Delete("ns");
  ASSERT_FALSE(del);
  EXPECT_TRUE(del.error().Is(Errc::kFailedPrecondition));
  EXPECT_NE(del.error().ToString().find("containers"), std::string::npos) << del.error().ToString();
  ASSERT_TRUE(store.Delete({.ns = "ns"}, "c"));
  EXPECT_TRUE(namespaces.Delete("ns"));
}

TEST_F(ContainersTest, SurvivesReopen) {
  {
    ContainerStore store(*db_);
    ASSERT_TRUE(store.Create({.ns = "ns"}, Make("c")));
  }
  Reopen();
  ContainerStore store(*db_);
  auto got = store.Get({.ns = "ns"}, "c");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->spec, kSpec);
}

// GC: a container is a root for its snapshot and for what its labels reference.
class ContainersGcTest : public MetadataFixture {
 protected:
  void SetUp() override {
    MetadataFixture::SetUp();
    auto sn = snapshots::native::Snapshotter::Open(dir_->Path() + "/native");
    ASSERT_TRUE(sn) << sn.error().ToString();
    native_ = std::move(*sn);
    db_.reset();
    auto db = Db::Open(dir_->Path() + "/meta-gc", local_.get(), {{"native", native_.get()}});
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    cs_ = std::make_unique<ContentStore>(*db_);
    snapshots_ = std::make_unique<SnapshotStore>(*db_, "native", *native_);
  }
  void Collect() {
    auto s = GarbageCollect(*db_);
    ASSERT_TRUE(s) << s.error().ToString();
  }
  size_t BackendSnapshots() {
    size_t n = 0;
    EXPECT_TRUE(native_->Walk({},
                              [&](const snapshots::Info&) -> Status {
                                ++n;
                                return Ok();
                              },
                              {}));
    return n;
  }

  std::unique_ptr<snapshots::native::Snapshotter> native_;
  std::unique_ptr<SnapshotStore> snapshots_;
};

TEST_F(ContainersGcTest, ContainerKeepsItsSnapshotUntilDeleted) {
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(snapshots_->Prepare(ctx, "base-active", "", {}));
  ASSERT_TRUE(snapshots_->Commit(ctx, "base", "base-active", {}));
  ASSERT_TRUE(snapshots_->Prepare(ctx, "c1", "base", {}));
  ASSERT_TRUE(snapshots_->Prepare(ctx, "orphan", "", {}));
  ContainerStore store(*db_);
  Container c = Make("c1");
  c.snapshotter = "native";
  ASSERT_TRUE(store.Create(ctx, c));

  Collect();
  EXPECT_TRUE(snapshots_->Stat(ctx, "c1")) << "the container's snapshot stays";
  EXPECT_TRUE(snapshots_->Stat(ctx, "base")) << "and so does its parent";
  EXPECT_TRUE(snapshots_->Stat(ctx, "orphan").error().Is(Errc::kNotFound));
  EXPECT_EQ(BackendSnapshots(), 2u);

  // Once the container is gone, nothing references its snapshot chain.
  ASSERT_TRUE(store.Delete(ctx, "c1"));
  Collect();
  EXPECT_TRUE(snapshots_->Stat(ctx, "c1").error().Is(Errc::kNotFound));
  EXPECT_TRUE(snapshots_->Stat(ctx, "base").error().Is(Errc::kNotFound));
  EXPECT_EQ(BackendSnapshots(), 0u);
}

TEST_F(ContainersGcTest, ContainerLabelsReferenceContentAndSnapshots) {
  Context ctx{.ns = "ns"};
  Digest kept = Put("ns", "checkpoint");
  Digest gone = Put("ns", "unreferenced");
  ASSERT_TRUE(snapshots_->Prepare(ctx, "extra", "", {}));
  ContainerStore store(*db_);
  Container c = Make("c1");
  c.snapshotter.clear();
  c.snapshot_key.clear();
  c.labels = {{"containerd.io/gc.ref.content.checkpoint", kept.String()},
              {"containerd.io/gc.ref.snapshot.native", "extra"}};
  ASSERT_TRUE(store.Create(ctx, c));
  Collect();
  EXPECT_TRUE(cs_->Info(ctx, kept));
  EXPECT_FALSE(cs_->Info(ctx, gone));
  EXPECT_TRUE(snapshots_->Stat(ctx, "extra"));
  ASSERT_TRUE(store.Delete(ctx, "c1"));
  Collect();
  EXPECT_FALSE(cs_->Info(ctx, kept));
  EXPECT_FALSE(OnDisk(kept));
  EXPECT_TRUE(snapshots_->Stat(ctx, "extra").error().Is(Errc::kNotFound));
}

}  // namespace
}  // namespace berth::metadata
