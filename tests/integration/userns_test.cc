// Issue 16, point 1: pods with a user namespace of their own (hostUsers: false). The pod's
// pause and containers share it; root inside is an unprivileged id on the host; the image's
// files show root-owned inside without being copied or chowned (idmapped layers); a volume
// with the pod's mappings is idmapped; one without shows the mapped owner on the host.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "gtest/gtest.h"
#include "leftovers.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

constexpr uint32_t kHostId = 65536 * 23;  // the pod's uid and gid 0 on the host
constexpr uint32_t kLength = 65536;

void setMappings(google::protobuf::RepeatedPtrField<v1::IDMapping>* maps, uint32_t host_id) {
  auto* m = maps->Add();
  m->set_container_id(0);
  m->set_host_id(host_id);
  m->set_length(kLength);
}

// A pod of its own network and user namespace, as kubelet asks for hostUsers: false.
v1::PodSandboxConfig usernsPod(const std::string& name, uint32_t host_id = kHostId) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("userns");
  c.mutable_metadata()->set_uid("uid-" + name);
  c.set_hostname(name);
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::POD);
  auto* u = ns->mutable_userns_options();
  u->set_mode(v1::POD);
  setMappings(u->mutable_uids(), host_id);
  setMappings(u->mutable_gids(), host_id);
  return c;
}

// Every container of such a pod gets the pod's namespace options (kubelet's NamespacesForPod).
v1::ContainerConfig inPod(v1::ContainerConfig c, const v1::PodSandboxConfig& pod) {
  *c.mutable_linux()->mutable_security_context()->mutable_namespace_options() =
      pod.linux().security_context().namespace_options();
  return c;
}

// As on a node (/run, /var/lib), the folders above berthd's state can be searched by anyone:
// the root of a pod's user namespace is anyone outside it. The fixture's folder is 0700.
void reachable(const Berthd& d) { ASSERT_EQ(::chmod(d.dir().c_str(), 0755), 0); }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// /proc/<pid>/uid_map as "inside outside length" lines with single spaces.
std::string idMap(int pid, const char* which) {
  std::istringstream in(readFile("/proc/" + std::to_string(pid) + "/" + which));
  std::string out;
  for (uint64_t a, b, n; in >> a >> b >> n;)
    out += std::to_string(a) + " " + std::to_string(b) + " " + std::to_string(n) + "\n";
  return out;
}

// The real uid of `pid` as the host sees it.
long hostUid(int pid) {
  std::istringstream in(readFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Uid:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

uid_t ownerOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return static_cast<uid_t>(-1);
  return st.st_uid;
}

std::string run(Berthd& d, const std::string& id, const std::string& script) {
  v1::ExecSyncResponse out;
  grpc::Status st = execSync(d, id, {"sh", "-c", script}, &out, 30);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(out.exit_code(), 0) << script << ": " << out.stdout() << out.stderr();
  return out.stdout();
}

TEST(UsernsTest, PodAndContainersShareTheirOwnUserNamespaceBesideAHostUsersPod) {
  Berthd d;
  reachable(d);
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());

  // Volumes: one idmapped (the pod's mappings, as kubelet sends them), one not.
  const std::string mapped = d.dir() + "/vol-mapped", plain = d.dir() + "/vol-plain";
  ASSERT_TRUE(std::filesystem::create_directories(mapped));
  ASSERT_TRUE(std::filesystem::create_directories(plain));
  ASSERT_EQ(::chmod(plain.c_str(), 0777), 0);
  { std::ofstream(mapped + "/from-host") << "x"; }
  ASSERT_EQ(::chown((mapped + "/from-host").c_str(), 4321, 4321), 0);

  v1::PodSandboxConfig pc = usernsPod("own");
  std::string pod;
  ASSERT_TRUE(runPod(d, pc, &pod).ok()) << d.log();
  const std::string expected_map = "0 " + std::to_string(kHostId) + " 65536\n";
  int pause = pidInInfo(podStatus(d, pod, true).info());
  ASSERT_GT(pause, 0);
  EXPECT_EQ(idMap(pause, "uid_map"), expected_map);
  EXPECT_EQ(idMap(pause, "gid_map"), expected_map);
  // The pause runs as 65535 inside (containerd's pause user): an unprivileged id outside.
  EXPECT_EQ(hostUid(pause), kHostId + 65535);

  v1::ContainerConfig cc = inPod(sleepContainer("app", busybox), pc);
  auto* m = cc.add_mounts();
  m->set_container_path("/mapped");
  m->set_host_path(mapped);
  setMappings(m->mutable_uidmappings(), kHostId);
  setMappings(m->mutable_gidmappings(), kHostId);
  m = cc.add_mounts();
  m->set_container_path("/plain");
  m->set_host_path(plain);
  std::string ctr;
  ASSERT_TRUE(createContainer(d, pod, cc, pc, &ctr).ok()) << d.log();
  ASSERT_TRUE(startContainer(d, ctr).ok()) << d.log();
  int app = pidInInfo(containerStatus(d, ctr, true).info());
  ASSERT_GT(app, 0);
  EXPECT_EQ(idMap(app, "uid_map"), expected_map);
  EXPECT_EQ(hostUid(app), kHostId);
  char a[64] = {}, b[64] = {};
  ASSERT_GT(::readlink(("/proc/" + std::to_string(app) + "/ns/user").c_str(), a, sizeof a - 1), 0);
  ASSERT_GT(::readlink(("/proc/" + std::to_string(pause) + "/ns/user").c_str(), b, sizeof b - 1),
            0);
  EXPECT_STREQ(a, b) << "the container shares the pod's user namespace";

  // Inside: root, the image's files root-owned, the rootfs writable by root.
  EXPECT_EQ(run(d, ctr, "id -u; id -g"), "0\n0\n");
  EXPECT_EQ(run(d, ctr, "stat -c %u:%g /bin/busybox /etc/passwd /"), "0:0\n0:0\n0:0\n");
  // So are the pod's files berth writes (idmapped too), and they read the same as outside.
  EXPECT_EQ(run(d, ctr, "stat -c %u:%g /etc/resolv.conf /etc/hostname /etc/hosts"),
            "0:0\n0:0\n0:0\n");
  EXPECT_EQ(run(d, ctr, "cat /etc/hostname"), "own\n");
  EXPECT_EQ(run(d, ctr, "touch /made-in-rootfs && stat -c %u /made-in-rootfs"), "0\n");
  // The idmapped volume: host owners show through the mapping both ways.
  EXPECT_EQ(run(d, ctr, "stat -c %u:%g /mapped/from-host"), "4321:4321\n");
  run(d, ctr, "touch /mapped/by-root && touch /plain/by-root");
  EXPECT_EQ(ownerOf(mapped + "/by-root"), 0u) << "written through the idmapped mount";
  // The other volume: the file belongs to the pod's root as the host sees it.
  EXPECT_EQ(ownerOf(plain + "/by-root"), kHostId);
  EXPECT_EQ(run(d, ctr, "stat -c %u /plain/by-root"), "0\n");
  // Nothing the image holds was chowned on the host: only the writable layer's root.
  const std::string merged = d.state() + "/containers/" + ctr + "/rootfs";
  EXPECT_EQ(ownerOf(merged + "/bin/busybox"), kHostId) << "as seen through the idmapped layer";

  // Beside it, a pod of the host's users: ids are the host's.
  v1::PodSandboxConfig hc = hostNetworkPod("host-users");
  std::string host_pod, host_ctr;
  ASSERT_TRUE(runPod(d, hc, &host_pod).ok()) << d.log();
  ASSERT_TRUE(createContainer(d, host_pod, sleepContainer("app", busybox), hc, &host_ctr).ok())
      << d.log();
  ASSERT_TRUE(startContainer(d, host_ctr).ok()) << d.log();
  int host_app = pidInInfo(containerStatus(d, host_ctr, true).info());
  EXPECT_EQ(idMap(host_app, "uid_map"), "0 0 4294967295\n");
  EXPECT_EQ(hostUid(host_app), 0);
  EXPECT_EQ(run(d, host_ctr, "id -u"), "0\n");
  EXPECT_EQ(run(d, ctr, "id -u"), "0\n") << "the first still runs";

  // The verbose spec says what was asked.
  auto info = nlohmann::json::parse(containerStatus(d, ctr, true).info().at("info"));
  const auto& spec = info["runtimeSpec"]["linux"];
  EXPECT_EQ(spec["uidMappings"][0]["hostID"], kHostId);
  bool joined = false;
  for (const auto& n : spec["namespaces"]) {
    if (n["type"] == "user") joined = n.value("path", "") == d.state() + "/userns/" + pod;
  }
  EXPECT_TRUE(joined) << spec["namespaces"].dump();

  // A restart keeps them; then everything goes, nothing left.
  ASSERT_EQ(d.stop(), 0);
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(run(d, ctr, "id -u"), "0\n");
  v1::ContainerConfig second = inPod(sleepContainer("second", busybox), pc);
  std::string ctr2;
  ASSERT_TRUE(createContainer(d, pod, second, pc, &ctr2).ok()) << d.log();
  ASSERT_TRUE(startContainer(d, ctr2).ok()) << d.log();
  EXPECT_EQ(idMap(pidInInfo(containerStatus(d, ctr2, true).info()), "uid_map"), expected_map);
  for (const std::string& p : {pod, host_pod}) {
    ASSERT_TRUE(stopPod(d, p).ok()) << d.log();
    ASSERT_TRUE(removePod(d, p).ok()) << d.log();
  }
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
  EXPECT_EQ(ownerOf(mapped + "/from-host"), 4321u) << "host files are never chowned";
}

TEST(UsernsTest, SandboxImageRootfsIsIdmapped) {
  nlohmann::json spec = {{"repo", "berth-test/userns-pause"},
                         {"tags", {std::to_string(::getpid())}},
                         {"layers",
                          {{{"entries",
                             {{{"type", "file"},
                               {"path", "/pause"},
                               {"source", BERTH_PAUSE_PATH_STR},
                               {"mode", "0700"}}}}}}},
                         {"config", {{"Entrypoint", {"/pause"}}}}};
  const std::string ref = pushImage(spec)["ref"];
  Berthd d("[cri]\nsandbox_image = \"" + ref + "\"\n");
  reachable(d);
  ASSERT_TRUE(d.start()) << d.log();
  // /pause is root's alone (0700): only an idmapped rootfs lets the pod's root run it.
  std::string pod;
  ASSERT_TRUE(runPod(d, usernsPod("image"), &pod).ok()) << d.log();
  int pause = pidInInfo(podStatus(d, pod, true).info());
  ASSERT_GT(pause, 0);
  EXPECT_EQ(hostUid(pause), kHostId + 65535);
  ASSERT_TRUE(stopPod(d, pod).ok()) << d.log();
  ASSERT_TRUE(removePod(d, pod).ok()) << d.log();
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
}

TEST(UsernsTest, WhatCannotWorkIsRefusedNamingIt) {
  Berthd d;
  reachable(d);
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  std::string id;
  auto expect = [&](const grpc::Status& st, grpc::StatusCode code, const std::string& text) {
    EXPECT_EQ(st.error_code(), code) << st.error_message();
    EXPECT_NE(st.error_message().find(text), std::string::npos) << st.error_message();
  };
  auto ns = [](v1::PodSandboxConfig& c) {
    return c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  };
  v1::PodSandboxConfig c = usernsPod("bad");
  ns(c)->mutable_userns_options()->clear_uids();
  expect(runPod(d, c, &id), grpc::StatusCode::INVALID_ARGUMENT, "uid mappings: no mappings");
  c = usernsPod("bad");
  ns(c)->mutable_userns_options()->mutable_gids(0)->set_container_id(1);
  expect(runPod(d, c, &id), grpc::StatusCode::INVALID_ARGUMENT, "id 0 is not mapped");
  c = usernsPod("bad");
  ns(c)->mutable_userns_options()->set_mode(v1::TARGET);
  expect(runPod(d, c, &id), grpc::StatusCode::INVALID_ARGUMENT, "mode TARGET");
  c = usernsPod("bad");
  ns(c)->set_network(v1::NODE);
  expect(runPod(d, c, &id), grpc::StatusCode::INVALID_ARGUMENT, "host's network");
  c = usernsPod("bad");
  ns(c)->set_pid(v1::NODE);
  expect(runPod(d, c, &id), grpc::StatusCode::INVALID_ARGUMENT, "host's pid");
  // crun has no `features` command: no user namespaces through it (RuntimeStatus says so).
  expect(runPod(d, usernsPod("bad"), &id, "crun"), grpc::StatusCode::FAILED_PRECONDITION,
         "runtime handler \"crun\" cannot give a pod a user namespace");

  // Containers: the pod's namespace or none.
  v1::PodSandboxConfig pc = usernsPod("good");
  std::string pod;
  ASSERT_TRUE(runPod(d, pc, &pod).ok()) << d.log();
  v1::ContainerConfig cc = inPod(sleepContainer("other-maps", busybox), pc);
  cc.mutable_linux()
      ->mutable_security_context()
      ->mutable_namespace_options()
      ->mutable_userns_options()
      ->mutable_uids(0)
      ->set_host_id(kHostId + kLength);
  expect(createContainer(d, pod, cc, pc, &id), grpc::StatusCode::INVALID_ARGUMENT,
         "mappings differ from the pod's");
  cc = sleepContainer("host-users", busybox);
  cc.mutable_linux()
      ->mutable_security_context()
      ->mutable_namespace_options()
      ->mutable_userns_options()
      ->set_mode(v1::NODE);
  expect(createContainer(d, pod, cc, pc, &id), grpc::StatusCode::INVALID_ARGUMENT,
         "mode NODE in a pod with a user namespace of its own");
  cc = inPod(sleepContainer("mount-maps", busybox), pc);
  auto* m = cc.add_mounts();
  m->set_container_path("/v");
  m->set_host_path(d.dir());
  setMappings(m->mutable_uidmappings(), kHostId + kLength);
  setMappings(m->mutable_gidmappings(), kHostId + kLength);
  expect(createContainer(d, pod, cc, pc, &id), grpc::StatusCode::INVALID_ARGUMENT,
         "id mappings differ from the pod's");
  // Without anything said, a container joins the pod's.
  ASSERT_TRUE(createContainer(d, pod, sleepContainer("implicit", busybox), pc, &id).ok())
      << d.log();
  ASSERT_TRUE(startContainer(d, id).ok()) << d.log();
  EXPECT_EQ(hostUid(pidInInfo(containerStatus(d, id, true).info())), kHostId);

  // A pod of the host's users: a container or mount asking for mappings is refused.
  v1::PodSandboxConfig hc = hostNetworkPod("host-users");
  std::string host_pod;
  ASSERT_TRUE(runPod(d, hc, &host_pod).ok()) << d.log();
  cc = inPod(sleepContainer("pod-mode", busybox), pc);
  expect(createContainer(d, host_pod, cc, hc, &id), grpc::StatusCode::INVALID_ARGUMENT,
         "the pod has no user namespace of its own");
  cc = sleepContainer("mount-maps", busybox);
  m = cc.add_mounts();
  m->set_container_path("/v");
  m->set_host_path(d.dir());
  setMappings(m->mutable_uidmappings(), kHostId);
  setMappings(m->mutable_gidmappings(), kHostId);
  expect(createContainer(d, host_pod, cc, hc, &id), grpc::StatusCode::INVALID_ARGUMENT,
         "id mappings need a pod with a user namespace of its own");

  for (const std::string& p : {pod, host_pod}) {
    ASSERT_TRUE(stopPod(d, p).ok()) << d.log();
    ASSERT_TRUE(removePod(d, p).ok()) << d.log();
  }
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
}

// Where the folders above state are root's alone (the fixture's, 0700), a pod's own root could
// not reach its rootfs: RuntimeStatus says no, and such a pod is refused naming the folder.
TEST(UsernsTest, StateOthersCannotReachMeansNoUserNamespaces) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  v1::StatusRequest req;
  v1::StatusResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().Status(ctx.get(), req, &resp).ok());
  ASSERT_GT(resp.runtime_handlers_size(), 0);
  for (const auto& h : resp.runtime_handlers())
    EXPECT_FALSE(h.features().user_namespaces()) << h.name();
  std::string id;
  grpc::Status st = runPod(d, usernsPod("unreachable"), &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find(d.dir() + " cannot be searched by others (mode 0700)"),
            std::string::npos)
      << st.error_message();
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
}

}  // namespace
}  // namespace berth::testing
