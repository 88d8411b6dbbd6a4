// The Containers service with the real ctr: `ctr containers create|ls|info|label|rm` against
// berthd, their events, filters, GC of a container's snapshot, and a namespace that still holds
// containers refusing deletion.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "harness.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kImage = "docker.io/berth/busybox:latest";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

class ContainersIT : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = Daemon::Create();
    ASSERT_TRUE(d_->Start()) << d_->Log();
  }
  void TearDown() override {
    if (HasFailure() && d_) std::cerr << "berthd log:\n" << d_->Log() << "\n";
  }

  RunResult Ok(const std::vector<std::string>& args, const std::string& ns = "") {
    auto r = d_->Ctr(args, ns);
    EXPECT_EQ(r.exit_code, 0) << "ctr " << ::testing::PrintToString(args) << ": " << r.err;
    return r;
  }
  // Imports (and unpacks on overlayfs) the busybox fixture image.
  void ImportBusybox(const std::string& ns = "") {
    std::string archive = Fixtures() + "/busybox-oci.tar";
    ASSERT_FALSE(Fixtures().empty());
    Ok({"images", "import", archive}, ns);
  }
  bool HasSnapshot(const std::string& key, const std::string& ns = "") {
    auto r = d_->Ctr({"snapshots", "info", key}, ns);
    return r.exit_code == 0;
  }

  std::unique_ptr<Daemon> d_;
};

TEST_F(ContainersIT, CreateListInfoLabelRemove) {
  ImportBusybox();
  ASSERT_FALSE(HasFailure());
  Ok({"containers", "create", "--label", "app=web", kImage, "c1"});
  Ok({"containers", "create", kImage, "c2"});

  auto dup = d_->Ctr({"containers", "create", kImage, "c1"});
  EXPECT_NE(dup.exit_code, 0);
  EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;

  // ls: the header and one row per container, image and runtime.
  auto ls = Ok({"containers", "ls"});
  auto rows = Lines(ls.out);
  ASSERT_EQ(rows.size(), 3u) << ls.out;
  EXPECT_EQ(rows[0].substr(0, 9), "CONTAINER");
  EXPECT_NE(rows[1].find("c1"), std::string::npos);
  EXPECT_NE(rows[1].find(kImage), std::string::npos);
  EXPECT_NE(rows[1].find("io.containerd.runc.v2"), std::string::npos);
  EXPECT_EQ(Ok({"containers", "ls", "-q"}).out, "c1\nc2\n");

  // info: containerd's JSON, with the spec decoded.
  auto info = Ok({"containers", "info", "c1"});
  auto j = nlohmann::json::parse(info.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << info.out;
  EXPECT_EQ(j["ID"], "c1");
  EXPECT_EQ(j["Image"], kImage);
  EXPECT_EQ(j["Runtime"]["Name"], "io.containerd.runc.v2");
  EXPECT_EQ(j["Snapshotter"], "overlayfs");
  EXPECT_EQ(j["SnapshotKey"], "c1");
  EXPECT_EQ(j["Labels"]["app"], "web");
  EXPECT_EQ(j["Spec"]["process"]["args"][0], "sh") << info.out;
  EXPECT_FALSE(j["CreatedAt"].get<std::string>().empty());
  auto spec = Ok({"containers", "info", "--spec", "c1"});
  EXPECT_NE(spec.out.find("\"ociVersion\""), std::string::npos) << spec.out;

  // The snapshot survives a garbage collection: the container is a root.
  auto lease = Ok({"leases", "create"});
  std::string lease_id = lease.out.substr(0, lease.out.find('\n'));
  Ok({"leases", "rm", "--sync", lease_id});
  EXPECT_TRUE(HasSnapshot("c1"));

  // label: set and clear; filters see it.
  // ctr prints all labels (Go map order); ctr adds the image's stop signal as a label.
  auto label = Ok({"containers", "label", "c2", "tier=db"});
  EXPECT_NE(label.out.find("tier=db"), std::string::npos) << label.out;
  EXPECT_NE(label.out.find("io.containerd.image.config.stop-signal=SIGTERM"), std::string::npos)
      << label.out;
  EXPECT_EQ(Ok({"containers", "ls", "-q", "labels.tier==db"}).out, "c2\n");
  EXPECT_EQ(Ok({"containers", "ls", "-q", "labels.app==web"}).out, "c1\n");
  EXPECT_EQ(Ok({"containers", "ls", "-q", "labels.app==web", "labels.tier==db"}).out, "c1\nc2\n");
  EXPECT_EQ(Ok({"containers", "ls", "-q", "id==c2"}).out, "c2\n");
  EXPECT_EQ(Ok({"containers", "ls", "-q", "runtime.name==io.containerd.runc.v2,id~=^c"}).out,
            "c1\nc2\n");
  EXPECT_EQ(Ok({"containers", "ls", "-q", "image==other"}).out, "");
  Ok({"containers", "label", "c2", "tier="});
  EXPECT_EQ(Ok({"containers", "ls", "-q", "labels.tier"}).out, "");
  auto bad = d_->Ctr({"containers", "ls", "id=="});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("invalid argument"), std::string::npos) << bad.err;

  // rm removes the record and the snapshot.
  Ok({"containers", "rm", "c1"});
  EXPECT_FALSE(HasSnapshot("c1"));
  EXPECT_TRUE(HasSnapshot("c2"));
  EXPECT_EQ(Ok({"containers", "ls", "-q"}).out, "c2\n");
  auto gone = d_->Ctr({"containers", "info", "c1"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("container \"c1\" in namespace \"default\": not found"),
            std::string::npos)
      << gone.err;
  auto rm_again = d_->Ctr({"containers", "rm", "c1"});
  EXPECT_NE(rm_again.exit_code, 0);
  EXPECT_NE(rm_again.err.find("not found"), std::string::npos) << rm_again.err;
  Ok({"containers", "rm", "c2"});
  EXPECT_FALSE(HasSnapshot("c2"));
  EXPECT_EQ(Ok({"containers", "ls", "-q"}).out, "");
}

TEST_F(ContainersIT, Events) {
  ImportBusybox();
  ASSERT_FALSE(HasFailure());
  auto events = Watch::Start({"ctr", "-a", d_->Socket(), "events", "topic~=/containers/"});
  ASSERT_TRUE(events);
  // The subscriber connects asynchronously: create throwaway containers until one is seen.
  bool synced = false;
  for (int i = 0; i < 60 && !synced; ++i) {
    std::string id = "sync-" + std::to_string(i);
    Ok({"containers", "create", kImage, id});
    synced = events->WaitFor("\"id\":\"" + id + "\"", 500ms);
  }
  ASSERT_TRUE(synced) << events->Out() << events->Err();
  Ok({"containers", "create", kImage, "web"});
  Ok({"containers", "label", "web", "a=1"});
  Ok({"containers", "rm", "web"});
  ASSERT_TRUE(events->WaitFor("/containers/delete {\"id\":\"web\"}")) << events->Out();
  std::string out = events->Out();
  auto create = out.find(
      "default /containers/create "
      "{\"id\":\"web\",\"image\":\"docker.io/berth/busybox:latest\",\"runtime\":{\"name\":"
      "\"io.containerd.runc.v2\"");
  auto update = out.find(
      "default /containers/update {\"id\":\"web\",\"image\":\"docker.io/berth/busybox:latest\","
      "\"labels\":{\"a\":\"1\",\"io.containerd.image.config.stop-signal\":\"SIGTERM\"},"
      "\"snapshot_key\":\"web\"}");
  auto del = out.find("default /containers/delete {\"id\":\"web\"}");
  ASSERT_NE(create, std::string::npos) << out;
  ASSERT_NE(update, std::string::npos) << out;
  EXPECT_LT(create, update);
  EXPECT_LT(update, del);
}

TEST_F(ContainersIT, NamespaceWithContainersCannotBeDeleted) {
  // --rootfs: a container with neither image nor snapshot, so only "containers" holds the
  // namespace.
  std::string rootfs = d_->Dir() + "/rootfs";
  ASSERT_EQ(::mkdir(rootfs.c_str(), 0755), 0);
  Ok({"containers", "create", "--rootfs", rootfs, "bare-c"}, "bare");
  auto rm = d_->Ctr({"namespaces", "rm", "bare"});
  EXPECT_NE(rm.exit_code, 0);
  EXPECT_NE(rm.err.find("namespace \"bare\" must be empty, but it still has containers: failed "
                        "precondition"),
            std::string::npos)
      << rm.err;
  auto info = Ok({"containers", "info", "bare-c"}, "bare");
  auto j = nlohmann::json::parse(info.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << info.out;
  EXPECT_EQ(j["Image"], "");
  EXPECT_EQ(j["SnapshotKey"], "");
  EXPECT_EQ(j["Spec"]["root"]["path"], rootfs) << info.out;
  Ok({"containers", "rm", "bare-c"}, "bare");
  Ok({"namespaces", "rm", "bare"});
  EXPECT_EQ(Ok({"namespaces", "ls", "-q"}).out.find("bare"), std::string::npos);
}

TEST_F(ContainersIT, ContainersAreNamespaced) {
  ImportBusybox();
  ImportBusybox("other");
  ASSERT_FALSE(HasFailure());
  Ok({"containers", "create", kImage, "same"});
  Ok({"containers", "create", kImage, "same"}, "other");
  Ok({"containers", "rm", "same"});
  EXPECT_EQ(Ok({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(Ok({"containers", "ls", "-q"}, "other").out, "same\n");
  EXPECT_TRUE(HasSnapshot("same", "other"));
  Ok({"containers", "rm", "same"}, "other");
}

}  // namespace
}  // namespace berth::testing
