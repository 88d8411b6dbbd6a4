// `make install`'s part that lands on the host: the binaries and the systemd unit, installed
// into a temporary DESTDIR and checked as systemd would check them; and berthd's readiness
// notification, which the unit's Type=notify waits for.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <poll.h>

#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "harness.h"

namespace berth::testing {
namespace {

std::string FindUnit(const std::string& root) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == "berthd.service") return it->path().string();
  }
  return "";
}

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

TEST(InstallTest, UnitAndBinariesInstallAndVerify) {
  auto dest = fs::TempDir::Create("berth-destdir-");
  ASSERT_TRUE(dest);
  const std::string root = dest->Path();
  auto install = Exec({"env", "DESTDIR=" + root, "cmake", "--install", BERTH_BUILD_DIR});
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;

  const std::string unit_path = FindUnit(root);
  ASSERT_FALSE(unit_path.empty()) << "no berthd.service under " << root << "\n" << install.out;
  EXPECT_NE(unit_path.find("/lib/systemd/system/berthd.service"), std::string::npos) << unit_path;
  const std::string unit = ReadText(unit_path);
  for (const char* line :
       {"\nType=notify\n", "\nDelegate=yes\n", "\nKillMode=process\n", "\nLimitNOFILE=infinity\n",
        "\nOOMScoreAdjust=-999\n", "\nWantedBy=multi-user.target\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << "missing " << line << " in\n" << unit;
  }
  // ExecStart names berthd where it was installed; the other binaries are beside it.
  auto at = unit.find("\nExecStart=");
  ASSERT_NE(at, std::string::npos) << unit;
  at += 11;
  const std::string berthd = unit.substr(at, unit.find('\n', at) - at);
  ASSERT_TRUE(berthd.starts_with("/") && berthd.ends_with("/berthd")) << berthd;
  const std::string bin = root + berthd.substr(0, berthd.size() - 7);
  for (const char* b : {"berthd", "berth", "containerd-shim-berth-v2", "berth-pause"}) {
    EXPECT_TRUE(Executable(bin + "/" + b)) << bin << "/" << b;
  }

  if (!Executable("/usr/bin/systemd-analyze") ||
      !std::filesystem::exists("/usr/lib/systemd/system")) {
    GTEST_SKIP() << "systemd-analyze or /usr/lib/systemd/system is missing: the unit's syntax "
                    "is not verified (Debian's systemd package provides both)";
  }
  // `verify --root` resolves the unit's dependencies (sysinit.target, ...) inside the root:
  // give it the host's system units beside what was installed.
  ASSERT_EQ(Exec({"mkdir", "-p", root + "/usr/lib/systemd"}).exit_code, 0);
  auto cp = Exec({"cp", "-a", "/usr/lib/systemd/system", root + "/usr/lib/systemd/"});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  auto verify = Exec(
      {"systemd-analyze", "verify", "--man=no", "--root=" + root, unit_path.substr(root.size())});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.out + verify.err, "") << "systemd-analyze warned about the unit";
}

// Type=notify: berthd sends READY=1 once its socket serves, and STOPPING=1 when it stops.
TEST(InstallTest, BerthdNotifiesSystemd) {
  auto dir = fs::TempDir::Create("berth-notify-");
  ASSERT_TRUE(dir);
  const std::string path = dir->Path() + "/notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << path;
  auto next = [fd]() -> std::string {
    pollfd p{.fd = fd, .events = POLLIN};
    if (::poll(&p, 1, 30'000) != 1) return "(nothing within 30 s)";
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    return n < 0 ? "(recv failed)" : std::string(buf, static_cast<size_t>(n));
  };

  Daemon::Options o;
  o.env = {"NOTIFY_SOCKET=" + path};
  auto d = Daemon::Create(o);
  ASSERT_TRUE(d->Start()) << d->Log();
  EXPECT_EQ(next(), "READY=1");
  EXPECT_EQ(d->Ctr({"version"}).exit_code, 0);
  EXPECT_EQ(d->Stop(), 0);
  EXPECT_EQ(next(), "STOPPING=1");
  ::close(fd);
}

}  // namespace
}  // namespace berth::testing
