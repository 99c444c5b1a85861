// Tests for container mounts (order, overrides, validation, propagation) and devices.
#include "oci/container_mounts.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/status.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "oci/spec.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using testing::TestDir;

class ContainerMountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* f : {"hosts", "resolv.conf", "hostname", "termination-log"}) {
      std::ofstream(dir_ / f) << "x\n";
    }
    for (const char* d : {"shm", "data", "data/sub", "shared", "slave", "private"}) {
      std::filesystem::create_directories(dir_ / d);
    }
    std::ofstream(dir_ / "mountinfo")
        << "20 1 8:1 / / rw,relatime - ext4 /dev/sda rw\n"
        << "30 20 0:5 / " << (dir_ / "shared") << " rw shared:5 - tmpfs tmpfs rw\n"
        << "31 20 0:6 / " << (dir_ / "slave") << " rw master:5 - tmpfs tmpfs rw\n"
        << "32 20 0:7 / " << (dir_ / "private") << " rw - tmpfs tmpfs rw\n";
    config_.name = "web";
  }

  ContainerSpecInput input() {
    ContainerSpecInput in;
    in.id = "c1";
    in.sandbox_id = "s1";
    in.config = &config_;
    in.sandbox = &sandbox_;
    in.hosts_path = dir_ / "hosts";
    in.resolv_conf_path = dir_ / "resolv.conf";
    in.hostname_path = dir_ / "hostname";
    in.shm_path = dir_ / "shm";
    in.mountinfo_path = dir_ / "mountinfo";
    return in;
  }

  absl::StatusOr<json> mounts(const std::function<void(ContainerSpecInput&)>& tweak = {}) {
    ContainerSpecInput in = input();
    if (tweak) tweak(in);
    json spec = defaultSpec();
    BERTH_RETURN_IF_ERROR(setContainerMounts(in, spec));
    spec_ = spec;
    return spec["mounts"];
  }

  static std::vector<std::string> destinations(const json& mounts) {
    std::vector<std::string> out;
    for (const json& m : mounts) out.push_back(m["destination"]);
    return out;
  }
  static const json* at(const json& mounts, const std::string& dest) {
    for (const json& m : mounts) {
      if (m["destination"] == dest) return &m;
    }
    return nullptr;
  }

  TestDir dir_;
  ContainerConfig config_;
  sandbox::SandboxConfig sandbox_;
  json spec_;
};

TEST_F(ContainerMountsTest, DefaultOrderAndPodFiles) {
  auto m = mounts();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(destinations(*m),
            (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys",
                                      "/sys/fs/cgroup", "/etc/hostname", "/etc/hosts",
                                      "/etc/resolv.conf", "/dev/shm"}));
  const json* hosts = at(*m, "/etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ((*hosts)["type"], "bind");
  EXPECT_EQ((*hosts)["source"], dir_ / "hosts");
  EXPECT_EQ((*hosts)["options"], (json{"rbind", "rprivate", "rw"}));
  EXPECT_EQ((*at(*m, "/dev/shm"))["source"], dir_ / "shm");
  EXPECT_EQ((*at(*m, "/sys/fs/cgroup"))["options"].back(), "ro");
  EXPECT_FALSE(spec_["linux"].contains("rootfsPropagation"));
}

TEST_F(ContainerMountsTest, ReadonlyRootfsBindsPodFilesReadOnly) {
  config_.security.readonly_rootfs = true;
  auto m = mounts();
  ASSERT_TRUE(m.ok()) << m.status();
  for (const char* f : {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}) {
    EXPECT_EQ((*at(*m, f))["options"].back(), "ro") << f;
  }
  EXPECT_EQ((*at(*m, "/dev/shm"))["options"].back(), "rw");
}

TEST_F(ContainerMountsTest, IpcNodeUsesHostShm) {
  config_.security.ipc = sandbox::NamespaceMode::kNode;
  auto m = mounts();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*at(*m, "/dev/shm"))["source"], "/dev/shm");
}

TEST_F(ContainerMountsTest, TerminationLog) {
  auto m = mounts(
      [&](ContainerSpecInput& in) { in.termination_log_host_path = dir_ / "termination-log"; });
  ASSERT_TRUE(m.ok()) << m.status();
  const json* t = at(*m, "/dev/termination-log");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ((*t)["source"], dir_ / "termination-log");
  EXPECT_EQ((*t)["options"].back(), "rw");
}

TEST_F(ContainerMountsTest, CriMountsOverrideAndSortByDepth) {
  config_.mounts = {
      {.container_path = "/data/sub/deep", .host_path = dir_ / "data/sub", .readonly = true},
      {.container_path = "/data", .host_path = dir_ / "data"},
      {.container_path = "/etc/hosts", .host_path = dir_ / "resolv.conf"},
      {.container_path = "/dev/shm/", .host_path = dir_ / "data"},
  };
  auto m = mounts();
  ASSERT_TRUE(m.ok()) << m.status();
  auto d = destinations(*m);
  // The pod's /etc/hosts and /dev/shm are replaced, and so is the default /dev/shm tmpfs.
  EXPECT_EQ(std::count(d.begin(), d.end(), "/etc/hosts"), 1);
  EXPECT_EQ((*at(*m, "/etc/hosts"))["source"], dir_ / "resolv.conf");
  EXPECT_EQ(std::count(d.begin(), d.end(), "/dev/shm"), 0);  // given as "/dev/shm/"
  EXPECT_EQ(std::count(d.begin(), d.end(), "/dev/shm/"), 1);
  auto pos = [&d](const std::string& s) { return std::find(d.begin(), d.end(), s) - d.begin(); };
  EXPECT_LT(pos("/data"), pos("/data/sub/deep"));
  EXPECT_LT(pos("/sys/fs/cgroup"), pos("/data"));
  EXPECT_EQ((*at(*m, "/data/sub/deep"))["options"], (json{"rbind", "rprivate", "ro"}));
}

TEST_F(ContainerMountsTest, DevMountDropsDefaultsUnderDev) {
  config_.mounts = {{.container_path = "/dev", .host_path = dir_ / "data"}};
  auto m = mounts();
  ASSERT_TRUE(m.ok()) << m.status();
  auto d = destinations(*m);
  for (const char* gone : {"/dev/pts", "/dev/mqueue"}) {
    EXPECT_EQ(std::count(d.begin(), d.end(), gone), 0) << gone;
  }
  EXPECT_EQ((*at(*m, "/dev"))["type"], "bind");
  EXPECT_NE(at(*m, "/dev/shm"), nullptr);  // the pod's shm still goes on top
}

TEST_F(ContainerMountsTest, SymlinkedHostPathIsResolved) {
  ASSERT_EQ(::symlink((dir_ / "data").c_str(), (dir_ / "link").c_str()), 0);
  config_.mounts = {{.container_path = "/x", .host_path = dir_ / "link"}};
  auto m = mounts();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*at(*m, "/x"))["source"], dir_ / "data");
}

struct BadMountCase {
  const char* name;
  std::vector<ContainerMount> mounts;
  const char* message_part;
};

TEST_F(ContainerMountsTest, Validation) {
  const std::string missing = dir_ / "missing";
  const BadMountCase cases[] = {
      {"relative container path",
       {{.container_path = "data", .host_path = dir_ / "data"}},
       "container_path \"data\" is not an absolute path"},
      {"empty container path",
       {{.container_path = "", .host_path = dir_ / "data"}},
       "container_path \"\""},
      {"relative host path",
       {{.container_path = "/d", .host_path = "data"}},
       "host_path \"data\" is not an absolute path"},
      {"missing host path", {{.container_path = "/d", .host_path = missing}}, "does not exist"},
      {"duplicate",
       {{.container_path = "/d", .host_path = dir_ / "data"},
        {.container_path = "/d/", .host_path = dir_ / "data"}},
       "two mounts"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    config_.mounts = tc.mounts;
    auto m = mounts();
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
    EXPECT_NE(m.status().message().find(tc.message_part), absl::string_view::npos) << m.status();
  }
}

TEST_F(ContainerMountsTest, CreateMissingHostPathWhenAsked) {
  const std::string missing = dir_ / "made/here";
  config_.mounts = {{.container_path = "/d", .host_path = missing}};
  auto m = mounts([](ContainerSpecInput& in) { in.create_missing_host_paths = true; });
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(std::filesystem::is_directory(missing));
}

struct PropagationCase {
  const char* dir;
  MountPropagation propagation;
  absl::StatusCode code;
  const char* option;
  const char* rootfs_propagation;  // "" = unset
};

TEST_F(ContainerMountsTest, Propagation) {
  using P = MountPropagation;
  const PropagationCase cases[] = {
      {"private", P::kPrivate, absl::StatusCode::kOk, "rprivate", ""},
      {"shared", P::kBidirectional, absl::StatusCode::kOk, "rshared", "rshared"},
      {"shared", P::kHostToContainer, absl::StatusCode::kOk, "rslave", "rslave"},
      {"slave", P::kHostToContainer, absl::StatusCode::kOk, "rslave", "rslave"},
      {"slave", P::kBidirectional, absl::StatusCode::kFailedPrecondition, "", ""},
      {"private", P::kHostToContainer, absl::StatusCode::kFailedPrecondition, "", ""},
      {"private", P::kBidirectional, absl::StatusCode::kFailedPrecondition, "", ""},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(std::string(tc.dir) + " " + std::to_string(static_cast<int>(tc.propagation)));
    config_.mounts = {
        {.container_path = "/v", .host_path = dir_ / tc.dir, .propagation = tc.propagation}};
    auto m = mounts();
    ASSERT_EQ(m.status().code(), tc.code) << m.status();
    if (!m.ok()) {
      EXPECT_NE(m.status().message().find(dir_ / tc.dir), absl::string_view::npos);
      continue;
    }
    EXPECT_EQ((*at(*m, "/v"))["options"][1], tc.option);
    EXPECT_EQ(spec_["linux"].value("rootfsPropagation", ""), tc.rootfs_propagation);
  }
}

TEST_F(ContainerMountsTest, SharedWinsOverSlaveForRootPropagation) {
  config_.mounts = {
      {.container_path = "/a",
       .host_path = dir_ / "shared",
       .propagation = MountPropagation::kBidirectional},
      {.container_path = "/b",
       .host_path = dir_ / "slave",
       .propagation = MountPropagation::kHostToContainer},
  };
  ASSERT_TRUE(mounts().ok());
  EXPECT_EQ(spec_["linux"]["rootfsPropagation"], "rshared");
}

// Recursive read-only: "rro" after "ro", only for read-only private mounts, only where the
// handler can do it.
TEST_F(ContainerMountsTest, RecursiveReadOnly) {
  auto rro = [this](bool readonly, MountPropagation p, bool supported) {
    config_.mounts = {{.container_path = "/v",
                       .host_path = dir_ / (p == MountPropagation::kPrivate ? "data" : "shared"),
                       .readonly = readonly,
                       .propagation = p,
                       .recursive_read_only = true}};
    return mounts([supported](ContainerSpecInput& in) {
      in.runtime_handler = "runc";
      in.recursive_read_only_supported = supported;
    });
  };
  auto ok = rro(true, MountPropagation::kPrivate, true);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*at(*ok, "/v"))["options"], (json{"rbind", "rprivate", "ro", "rro"}));

  auto rw = rro(false, MountPropagation::kPrivate, true);
  EXPECT_EQ(rw.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rw.status().message().find("mount at \"/v\": recursive_read_only needs readonly"),
            absl::string_view::npos)
      << rw.status();
  auto shared = rro(true, MountPropagation::kHostToContainer, true);
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(shared.status().message().find("private propagation"), absl::string_view::npos)
      << shared.status();
  auto unsupported = rro(true, MountPropagation::kPrivate, false);
  EXPECT_EQ(unsupported.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(unsupported.status().message().find("runtime handler \"runc\""),
            absl::string_view::npos)
      << unsupported.status();
}

// ---- devices --------------------------------------------------------------------------------

class ContainerDevicesTest : public ContainerMountsTest {
 protected:
  void SetUp() override {
    ContainerMountsTest::SetUp();
    std::filesystem::create_directories(dir_ / "dev/snd");
    std::filesystem::create_directories(dir_ / "dev/pts");
    if (::mknod((dir_ / "dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
      GTEST_SKIP() << "mknod needs CAP_MKNOD";
    }
    ASSERT_EQ(::chmod((dir_ / "dev/null").c_str(), 0666), 0);
    ASSERT_EQ(::mknod((dir_ / "dev/snd/pcm").c_str(), S_IFCHR | 0660, makedev(116, 2)), 0);
    ASSERT_EQ(::mknod((dir_ / "dev/snd/ctl").c_str(), S_IFCHR | 0660, makedev(116, 0)), 0);
    ASSERT_EQ(::mknod((dir_ / "dev/pts/0").c_str(), S_IFCHR | 0620, makedev(136, 0)), 0);
    ASSERT_EQ(::mknod((dir_ / "dev/console").c_str(), S_IFCHR | 0600, makedev(5, 1)), 0);
    ASSERT_EQ(::mknod((dir_ / "dev/loop0").c_str(), S_IFBLK | 0660, makedev(7, 0)), 0);
    ASSERT_EQ(::mkfifo((dir_ / "dev/fifo").c_str(), 0600), 0);
    ASSERT_EQ(::symlink("null", (dir_ / "dev/nullink").c_str()), 0);
    std::ofstream(dir_ / "dev/regular") << "x";
  }

  absl::StatusOr<json> devices() {
    ContainerSpecInput in = input();
    json spec = defaultSpec();
    BERTH_RETURN_IF_ERROR(addContainerDevices(in, spec));
    return spec;
  }
};

TEST_F(ContainerDevicesTest, SingleDevice) {
  config_.devices = {
      {.container_path = "/dev/xnull", .host_path = dir_ / "dev/nullink", .permissions = "rw"},
      {.container_path = "/dev/loop9", .host_path = dir_ / "dev/loop0"}};
  auto spec = devices();
  ASSERT_TRUE(spec.ok()) << spec.status();
  const json& devs = (*spec)["linux"]["devices"];
  ASSERT_EQ(devs.size(), 2u);
  EXPECT_EQ(devs[0]["path"], "/dev/xnull");
  EXPECT_EQ(devs[0]["type"], "c");
  EXPECT_EQ(devs[0]["major"], 1);
  EXPECT_EQ(devs[0]["minor"], 3);
  EXPECT_EQ(devs[0]["fileMode"], 0666);
  EXPECT_EQ(devs[1]["type"], "b");
  const json& rules = (*spec)["linux"]["resources"]["devices"];
  ASSERT_EQ(rules.size(), 3u);  // deny-all, then one allow per device
  EXPECT_EQ(rules[0]["allow"], false);
  EXPECT_EQ(rules[1],
            (json{{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rw"}}));
  EXPECT_EQ(rules[2]["access"], "rwm");
}

TEST_F(ContainerDevicesTest, Directory) {
  config_.devices = {
      {.container_path = "/dev/snd", .host_path = dir_ / "dev/snd", .permissions = "r"}};
  auto spec = devices();
  ASSERT_TRUE(spec.ok()) << spec.status();
  const json& devs = (*spec)["linux"]["devices"];
  ASSERT_EQ(devs.size(), 2u);
  EXPECT_EQ(devs[0]["path"], "/dev/snd/ctl");
  EXPECT_EQ(devs[1]["path"], "/dev/snd/pcm");
}

TEST_F(ContainerDevicesTest, Errors) {
  struct Case {
    ContainerDevice device;
    const char* part;
  } cases[] = {
      {{.container_path = "/dev/x", .host_path = dir_ / "dev/none"}, "does not exist"},
      {{.container_path = "/dev/x", .host_path = dir_ / "dev/regular"}, "not a device"},
      {{.container_path = "/dev/x", .host_path = dir_ / "dev/null", .permissions = "rwx"},
       "permissions \"rwx\""},
      {{.container_path = "dev/x", .host_path = dir_ / "dev/null"}, "not an absolute path"},
      {{.container_path = "/dev/x", .host_path = "dev/null"}, "not an absolute path"},
  };
  for (const auto& tc : cases) {
    config_.devices = {tc.device};
    auto spec = devices();
    ASSERT_FALSE(spec.ok()) << tc.part;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << spec.status();
    EXPECT_NE(spec.status().message().find(tc.part), absl::string_view::npos) << spec.status();
    EXPECT_NE(spec.status().message().find(tc.device.host_path), absl::string_view::npos)
        << spec.status();
  }
}

TEST_F(ContainerDevicesTest, HostDevicesForPrivileged) {
  json spec = defaultSpec();
  ASSERT_TRUE(addHostDevices(dir_ / "dev", spec).ok());
  std::vector<std::string> paths;
  for (const json& d : spec["linux"]["devices"]) paths.push_back(d["path"]);
  // Not pts/, console, FIFOs, symlinks or regular files.
  EXPECT_EQ(paths,
            (std::vector<std::string>{"/dev/loop0", "/dev/null", "/dev/snd/ctl", "/dev/snd/pcm"}));
  EXPECT_EQ(spec["linux"]["resources"]["devices"],
            json::array({{{"allow", true}, {"access", "rwm"}}}));
}

}  // namespace
}  // namespace berth::oci
