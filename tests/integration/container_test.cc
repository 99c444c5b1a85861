// Containers with real runc through the pod's berth-shim, images from the test registry:
// lifecycle and status (seed 002), the OCI spec seen from inside (env/args/workdir, users,
// read-only rootfs, masked paths, capabilities, cgroup limits), OOM, stop signals, CRI logs,
// ExecSync, exits while berthd is down.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "event_recorder.h"
#include "nlohmann/json.hpp"
#include "pod_env.h"
#include "test_env.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;


// The content of a CRI log (P fragments joined), one entry per full line.
std::vector<std::string> logLines(const std::string& path, const std::string& stream = "stdout") {
  std::vector<std::string> out;
  std::string pending;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    static const std::regex kLine(R"(^(\S+) (stdout|stderr) ([PF]) (.*)$)");
    if (!std::regex_match(line, m, kLine)) continue;
    if (m[2] != stream) continue;
    pending += m[4];
    if (m[3] == "F") {
      out.push_back(pending);
      pending.clear();
    }
  }
  return out;
}

TEST(ContainerTest, LifecycleAndStatus) {
  PodEnv e("lifecycle");
  ASSERT_FALSE(e.pod.empty());
  std::string id;
  auto cfg = e.containerConfig("web");
  ASSERT_TRUE(e.create(cfg, &id).ok());
  ASSERT_EQ(id.size(), 64u);

  auto s = e.status(id.substr(0, 12)).status();  // a unique prefix works
  EXPECT_EQ(s.id(), id);
  EXPECT_EQ(s.state(), v1::CONTAINER_CREATED);
  EXPECT_GT(s.created_at(), 0);
  EXPECT_EQ(s.started_at(), 0);
  EXPECT_EQ(s.finished_at(), 0);
  EXPECT_EQ(s.metadata().name(), "web");
  EXPECT_EQ(s.image().image(), e.busybox);
  EXPECT_EQ(s.image_id(), envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));
  EXPECT_NE(s.image_ref().find("@sha256:"), std::string::npos) << s.image_ref();
  EXPECT_EQ(s.labels().at("app"), "web");
  EXPECT_EQ(s.annotations().at("note"), "container test");
  EXPECT_EQ(s.log_path(), e.logPath("web"));

  ASSERT_TRUE(e.start(id).ok());
  s = e.status(id).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_RUNNING);
  EXPECT_GT(s.started_at(), 0);
  EXPECT_EQ(s.finished_at(), 0);
  // Starting twice is refused.
  EXPECT_EQ(e.start(id).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // Verbose info keys (seed 002).
  auto verbose = e.status(id, true);
  auto info = nlohmann::json::parse(verbose.info().at("info"));
  for (const char* key : {"sandboxID", "pid", "removing", "snapshotKey", "snapshotter",
                          "runtimeType", "runtimeOptions", "config", "runtimeSpec"}) {
    EXPECT_TRUE(info.contains(key)) << key;
  }
  EXPECT_EQ(info["sandboxID"], e.pod);
  EXPECT_GT(info["pid"].get<int>(), 0);
  EXPECT_EQ(info["removing"], false);
  EXPECT_EQ(info["snapshotter"], "overlayfs");
  EXPECT_EQ(info["config"]["metadata"]["name"], "web");
  EXPECT_EQ(info["runtimeSpec"]["process"]["args"][0], "sleep");
  int pid = info["pid"].get<int>();
  EXPECT_EQ(::kill(pid, 0), 0);

  // The pod's status carries its containers.
  {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(e.pod);
    v1::PodSandboxStatusResponse resp;
    auto ctx = Berthd::context();
    ASSERT_TRUE(e.d.runtime().PodSandboxStatus(ctx.get(), req, &resp).ok());
    ASSERT_EQ(resp.containers_statuses_size(), 1);
    EXPECT_EQ(resp.containers_statuses(0).id(), id);
  }

  // SIGTERM ends sleep; stop returns once it is gone; stopping again is fine.
  ASSERT_TRUE(e.stop(id.substr(0, 8), 10).ok());
  EXPECT_NE(::kill(pid, 0), 0);
  s = e.status(id).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 128 + SIGTERM);
  EXPECT_EQ(s.reason(), "Error");
  EXPECT_GT(s.finished_at(), s.started_at());
  EXPECT_TRUE(e.stop(id, 10).ok());

  // Name reuse is refused while the container exists.
  std::string dup;
  auto st = e.create(cfg, &dup);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  EXPECT_NE(st.error_message().find("web_lifecycle_default_uid-lifecycle_0"), std::string::npos)
      << st.error_message();

  // Remove: the record, rootfs and snapshot go, the log stays; removing again is fine.
  std::string log = e.logPath("web");
  st = e.remove(id);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << e.d.log();
  EXPECT_TRUE(std::filesystem::exists(log));
  EXPECT_FALSE(std::filesystem::exists(e.d.state() + "/containers/" + id));
  EXPECT_FALSE(std::filesystem::exists(e.d.root() + "/snapshots/" + id));
  EXPECT_TRUE(e.remove(id).ok());
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  v1::ContainerStatusResponse resp;
  auto ctx = Berthd::context();
  EXPECT_EQ(e.d.runtime().ContainerStatus(ctx.get(), req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The name is free again.
  ASSERT_TRUE(e.create(cfg, &dup).ok());
}

TEST(ContainerTest, BadRequestsAreNamed) {
  PodEnv e("badreq");
  ASSERT_FALSE(e.pod.empty());
  std::string id;
  auto cfg = e.containerConfig("x");
  cfg.mutable_image()->set_image("127.0.0.1:1/not/pulled:1.0");
  auto st = e.create(cfg, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("127.0.0.1:1/not/pulled:1.0"), std::string::npos) << st.error_message();

  cfg = e.containerConfig("");
  EXPECT_EQ(e.create(cfg, &id).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  cfg = e.containerConfig("escape");
  cfg.set_log_path("../../etc/evil.log");
  st = e.create(cfg, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();

  cfg = e.containerConfig("nogroup");
  cfg.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(100);
  st = e.create(cfg, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  // Nothing was left behind by the refused creates.
  EXPECT_TRUE(e.list().empty());
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(e.d.state() + "/containers", ec));

  // A pod that is not ready takes no new containers.
  v1::StopPodSandboxRequest sreq;
  sreq.set_pod_sandbox_id(e.pod);
  v1::StopPodSandboxResponse sresp;
  auto ctx = Berthd::context(60);
  ASSERT_TRUE(e.d.runtime().StopPodSandbox(ctx.get(), sreq, &sresp).ok());
  st = e.create(e.containerConfig("late"), &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();

  for (const char* rpc : {"start", "stop", "status"}) {
    grpc::Status s;
    if (std::string(rpc) == "start") s = e.start("ffffffffffff");
    if (std::string(rpc) == "stop") s = e.stop("ffffffffffff", 0);
    if (std::string(rpc) == "status") {
      v1::ContainerStatusRequest r;
      r.set_container_id("ffffffffffff");
      v1::ContainerStatusResponse resp;
      auto c = Berthd::context();
      s = e.d.runtime().ContainerStatus(c.get(), r, &resp);
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << rpc;
  }
}

TEST(ContainerTest, EnvArgsAndWorkdirMerge) {
  PodEnv e("merge");
  ASSERT_FALSE(e.pod.empty());
  nlohmann::json spec = {
      {"repo", "berth-test/merge"},
      {"tags", {"1.0"}},
      {"layers", {{{"preset", "busybox"}}}},
      {"config",
       {{"Env", {"PATH=/bin", "FROM_IMAGE=image", "OVERRIDE=image"}},
        {"Entrypoint", {"/bin/sh", "-c"}},
        {"Cmd", {"echo from-cmd"}},
        {"WorkingDir", "/etc"}}}};
  nlohmann::json pushed = pushImage(spec);
  std::string image = pushed["ref"];
  e.pull(image);

  // Args replace Cmd and keep the Entrypoint; envs are laid over the image's.
  auto cfg = e.containerConfig("args", {});
  cfg.mutable_image()->set_image(image);
  cfg.add_args("echo \"$FROM_IMAGE $OVERRIDE $FROM_CONFIG $(pwd)\"");
  auto* kv = cfg.add_envs();
  kv->set_key("OVERRIDE");
  kv->set_value("config");
  kv = cfg.add_envs();
  kv->set_key("FROM_CONFIG");
  kv->set_value("yes");
  std::string id = e.run(cfg);
  auto s = e.waitExited(id);
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.reason(), "Completed");
  EXPECT_EQ(logLines(e.logPath("args")), std::vector<std::string>{"image config yes /etc"});

  // Nothing given: Entrypoint + Cmd run.
  cfg = e.containerConfig("plain", {});
  cfg.mutable_image()->set_image(image);
  id = e.run(cfg);
  e.waitExited(id);
  EXPECT_EQ(logLines(e.logPath("plain")), std::vector<std::string>{"from-cmd"});

  // A command replaces the Entrypoint and drops Cmd; the working dir is the config's.
  cfg = e.containerConfig("command", {"pwd"});
  cfg.mutable_image()->set_image(image);
  cfg.set_working_dir("/tmp");
  id = e.run(cfg);
  e.waitExited(id);
  EXPECT_EQ(logLines(e.logPath("command")), std::vector<std::string>{"/tmp"});

  // An env value is bytes (cri-api v0.36.3): bytes that are not UTF-8 reach the process as
  // U+FFFD, as through containerd (whose spec is JSON too); before, the request failed.
  cfg = e.containerConfig("binary-env");
  kv = cfg.add_envs();
  kv->set_key("BIN");
  kv->set_value(std::string("\xFF\xFEok\xC3\xA9", 6));
  id = e.run(cfg);
  EXPECT_EQ(e.execOut(id, {"sh", "-c", "printf %s \"$BIN\" | od -An -tx1"}),
            " ef bf bd ef bf bd 6f 6b c3 a9\n");
}

TEST(ContainerTest, UserForms) {
  PodEnv e("users");
  ASSERT_FALSE(e.pod.empty());
  struct Case {
    std::string name;
    std::function<void(v1::ContainerConfig&)> set;
    std::string image_key;  // empty: busybox
    std::string want;       // prefix of `id` output
  };
  std::vector<Case> cases = {
      {"uid", [](auto& c) { c.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(1002); },
       "", "uid=1002(berth) gid=1002(berth) groups=100(users),1002(berth)"},
      {"username", [](auto& c) { c.mutable_linux()->mutable_security_context()->set_run_as_username("www-data"); },
       "", "uid=33(www-data) gid=33(www-data)"},
      {"uidgroup",
       [](auto& c) {
         auto* sc = c.mutable_linux()->mutable_security_context();
         sc->mutable_run_as_user()->set_value(1002);
         sc->mutable_run_as_group()->set_value(33);
       },
       "", "uid=1002(berth) gid=33(www-data)"},
      {"imageuser", [](auto&) {}, "BERTH_TEST_IMAGE_USER_UIDGROUP", "uid=1003 gid=100(users)"},
      {"supplemental",
       [](auto& c) {
         auto* sc = c.mutable_linux()->mutable_security_context();
         sc->mutable_run_as_user()->set_value(0);
         sc->add_supplemental_groups(1234);
       },
       "", "uid=0(root) gid=0(root) groups=0(root),1234"},
  };
  for (const auto& k : cases) {
    auto cfg = e.containerConfig(k.name);
    if (!k.image_key.empty()) {
      std::string image = envKey(k.image_key);
      e.pull(image);
      cfg.mutable_image()->set_image(image);
    }
    k.set(cfg);
    std::string id = e.run(cfg);
    std::string out = e.execOut(id, {"id"});
    EXPECT_EQ(out.substr(0, k.want.size()), k.want) << k.name << ": " << out;
    // The status reports the user too.
    auto s = e.status(id).status();
    EXPECT_TRUE(s.has_user()) << k.name;
  }
}

TEST(ContainerTest, SecurityContextFromInside) {
  PodEnv e("security");
  ASSERT_FALSE(e.pod.empty());
  // Read-only rootfs refuses writes; /tmp is not special here.
  auto cfg = e.containerConfig("readonly");
  cfg.mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  std::string ro = e.run(cfg);
  v1::ExecSyncResponse r;
  ASSERT_TRUE(e.exec(ro, {"touch", "/newfile"}, &r).ok());
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(r.stderr().find("Read-only file system"), std::string::npos) << r.stderr();

  // Default masked paths (containerd's list): /proc/timer_list reads as empty (the host's
  // is not), /sys/firmware is an empty directory; a given masked path is empty too.
  cfg = e.containerConfig("masked");
  std::string masked = e.run(cfg);
  ASSERT_GT(slurp("/proc/timer_list").size(), 0u);
  EXPECT_EQ(e.execOut(masked, {"sh", "-c", "wc -c < /proc/timer_list"}), "0\n");
  EXPECT_EQ(e.execOut(masked, {"ls", "-A", "/sys/firmware"}), "");
  cfg = e.containerConfig("masked2");
  auto* sc = cfg.mutable_linux()->mutable_security_context();
  sc->add_masked_paths("/etc/group");
  std::string masked2 = e.run(cfg);
  EXPECT_EQ(e.execOut(masked2, {"sh", "-c", "wc -c < /etc/group"}), "0\n");

  // Capabilities: drop ALL, add CHOWN → exactly bit 0.
  cfg = e.containerConfig("caps");
  sc = cfg.mutable_linux()->mutable_security_context();
  sc->mutable_capabilities()->add_drop_capabilities("ALL");
  sc->mutable_capabilities()->add_add_capabilities("CHOWN");
  std::string caps = e.run(cfg);
  std::string status = e.execOut(caps, {"cat", "/proc/self/status"});
  EXPECT_NE(status.find("CapEff:\t0000000000000001"), std::string::npos) << status;
  EXPECT_NE(status.find("CapBnd:\t0000000000000001"), std::string::npos) << status;
  // Adding NET_ADMIN on top of the defaults.
  cfg = e.containerConfig("netadmin");
  cfg.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  std::string netadmin = e.run(cfg);
  status = e.execOut(netadmin, {"cat", "/proc/self/status"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(status, m, std::regex("CapEff:\\t([0-9a-f]+)")));
  uint64_t eff = std::stoull(m[1], nullptr, 16);
  EXPECT_TRUE(eff & (1ull << 12)) << status;  // CAP_NET_ADMIN
  EXPECT_FALSE(eff & (1ull << 21)) << status;  // CAP_SYS_ADMIN is not a default

  // no_new_privs.
  cfg = e.containerConfig("nnp");
  cfg.mutable_linux()->mutable_security_context()->set_no_new_privs(true);
  std::string nnp = e.run(cfg);
  EXPECT_NE(e.execOut(nnp, {"cat", "/proc/self/status"}).find("NoNewPrivs:\t1"), std::string::npos);
}

TEST(ContainerTest, MountsDevicesPodFilesAndNamespaces) {
  PodEnv e("mounts");
  ASSERT_FALSE(e.pod.empty());
  std::string host = e.d.dir() + "/hostdir";
  std::filesystem::create_directories(host);
  std::ofstream(host + "/from-host") << "hello from the host\n";
  auto cfg = e.containerConfig("m");
  auto* rw = cfg.add_mounts();
  rw->set_container_path("/rw");
  rw->set_host_path(host);
  auto* ro = cfg.add_mounts();
  ro->set_container_path("/ro");
  ro->set_host_path(host);
  ro->set_readonly(true);
  ro->set_selinux_relabel(true);  // ignored here: SELinux is off
  auto* dev = cfg.add_devices();
  dev->set_host_path("/dev/null");
  dev->set_container_path("/dev/xnull");
  dev->set_permissions("rw");
  cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::CONTAINER);
  std::string id = e.run(cfg);
  EXPECT_EQ(e.execOut(id, {"cat", "/ro/from-host"}), "hello from the host\n");
  v1::ExecSyncResponse r;
  ASSERT_TRUE(e.exec(id, {"touch", "/ro/x"}, &r).ok());
  EXPECT_NE(r.exit_code(), 0) << "a read-only mount refuses writes";
  EXPECT_TRUE(e.execOut(id, {"touch", "/rw/written"}).empty());
  EXPECT_TRUE(std::filesystem::exists(host + "/written"));
  EXPECT_EQ(e.execOut(id, {"sh", "-c", "echo x > /dev/xnull && echo ok"}), "ok\n");
  // The pod's files.
  EXPECT_EQ(e.execOut(id, {"cat", "/etc/hostname"}), "mounts\n");
  EXPECT_NE(e.execOut(id, {"cat", "/etc/hosts"}).find("localhost"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(e.d.state() + "/pods/" + e.pod + "/resolv.conf"));
  EXPECT_EQ(e.execOut(id, {"cat", "/etc/resolv.conf"}),
            slurp(e.d.state() + "/pods/" + e.pod + "/resolv.conf"));
  std::string mounts = e.execOut(id, {"cat", "/proc/mounts"});
  EXPECT_NE(mounts.find(" /dev/shm tmpfs "), std::string::npos) << mounts;
  // pid CONTAINER: its own pid namespace, where its init is pid 1.
  EXPECT_EQ(e.execOut(id, {"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}), "sleep 3600 ");

  // pid TARGET: a second container joins the first one's pid namespace and sees its sleep.
  auto cfg2 = e.containerConfig("t");
  auto* ns = cfg2.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::TARGET);
  ns->set_target_id(id);
  std::string target = e.run(cfg2);
  EXPECT_EQ(e.execOut(target, {"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}), "sleep 3600 ");
  // pid POD (the default): the pause process is pid 1.
  std::string pod_pid = e.run(e.containerConfig("p"));
  EXPECT_NE(e.execOut(pod_pid, {"cat", "/proc/1/cmdline"}), "sleep 3600");
  EXPECT_NE(e.execOut(pod_pid, {"ps", "-o", "args"}).find("pause"), std::string::npos);
}

// A read-only mount with recursive_read_only is read-only in its submounts too (runc's "rro");
// a plain read-only bind leaves them writable. Bad requests are refused by name.
TEST(ContainerTest, RecursiveReadOnlyMounts) {
  PodEnv e("rro");
  ASSERT_FALSE(e.pod.empty());
  std::string host = e.d.dir() + "/rro";
  std::filesystem::create_directories(host + "/sub");
  ASSERT_EQ(::mount("tmpfs", (host + "/sub").c_str(), "tmpfs", 0, "size=1m"), 0)
      << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{host + "/sub"};
  auto cfg = e.containerConfig("rro");
  for (bool recursive : {false, true}) {
    auto* m = cfg.add_mounts();
    m->set_container_path(recursive ? "/rro" : "/ro");
    m->set_host_path(host);
    m->set_readonly(true);
    m->set_recursive_read_only(recursive);
  }
  std::string id = e.run(cfg);
  EXPECT_EQ(e.execOut(id, {"sh", "-c", "touch /ro/sub/a 2>&1; touch /ro/d 2>&1; true"}),
            "touch: /ro/d: Read-only file system\n");
  EXPECT_TRUE(std::filesystem::exists(host + "/sub/a")) << "a plain ro bind: submounts stay rw";
  std::string denied =
      e.execOut(id, {"sh", "-c", "touch /rro/sub/b 2>&1; touch /rro/c 2>&1; true"});
  EXPECT_EQ(denied,
            "touch: /rro/sub/b: Read-only file system\ntouch: /rro/c: Read-only file system\n");
  EXPECT_FALSE(std::filesystem::exists(host + "/sub/b"));

  struct Bad {
    bool readonly;
    v1::MountPropagation propagation;
    const char* says;
  };
  for (const Bad& b : {Bad{false, v1::PROPAGATION_PRIVATE, "recursive_read_only needs readonly"},
                       Bad{true, v1::PROPAGATION_HOST_TO_CONTAINER, "needs private propagation"}}) {
    auto bad = e.containerConfig(std::string("bad-") + (b.readonly ? "shared" : "rw"));
    auto* m = bad.add_mounts();
    m->set_container_path("/v");
    m->set_host_path(host);
    m->set_readonly(b.readonly);
    m->set_propagation(b.propagation);
    m->set_recursive_read_only(true);
    std::string none;
    grpc::Status st = e.create(bad, &none);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find(b.says), std::string::npos) << st.error_message();
    EXPECT_NE(st.error_message().find("mount at \"/v\""), std::string::npos) << st.error_message();
  }
}

// supplemental_groups_policy: Merge adds the groups of the image's /etc/group that list the user,
// Strict only what the pod asked for; ContainerStatus.user says what the process has.
TEST(ContainerTest, SupplementalGroupsPolicy) {
  PodEnv e("groups");
  ASSERT_FALSE(e.pod.empty());
  for (auto policy : {v1::Merge, v1::Strict}) {
    SCOPED_TRACE(policy == v1::Merge ? "Merge" : "Strict");
    auto cfg = e.containerConfig(policy == v1::Merge ? "merge" : "strict");
    auto* sc = cfg.mutable_linux()->mutable_security_context();
    sc->mutable_run_as_user()->set_value(1002);  // "berth" of the test image, in "users" (100)
    sc->add_supplemental_groups(3000);
    sc->set_supplemental_groups_policy(policy);
    std::string id = e.run(cfg);
    const std::string want = policy == v1::Merge ? "100 1002 3000" : "1002 3000";
    EXPECT_EQ(e.execOut(id, {"sh", "-c", "grep Groups: /proc/self/status"}),
              "Groups:\t" + want + " \n");
    v1::ContainerStatusResponse st = e.status(id, true);
    nlohmann::json info = nlohmann::json::parse(st.info().at("info"), nullptr, false);
    std::ifstream init("/proc/" + std::to_string(info.value("pid", 0)) + "/status");
    std::string groups;
    for (std::string line; std::getline(init, line);) {
      if (line.rfind("Groups:", 0) == 0) groups = line;
    }
    EXPECT_EQ(groups, "Groups:\t" + want + " ");
    const auto& user = st.status().user().linux();
    EXPECT_EQ(user.uid(), 1002);
    EXPECT_EQ(user.gid(), 1002);
    std::string reported;
    for (int64_t g : user.supplemental_groups()) {
      reported += (reported.empty() ? "" : " ") + std::to_string(g);
    }
    EXPECT_EQ(reported, want);
  }
}

// Image volumes (KEP-4639): a pulled image's files, read-only, at a path of the container; a
// sub path resolved inside the image; kept while the container exists, gone with it.
TEST(ContainerTest, ImageVolumes) {
  PodEnv e("image-volumes");
  ASSERT_FALSE(e.pod.empty());
  nlohmann::json spec = {
      {"repo", "berth-test/volume"},
      {"tags", {"1"}},
      {"layers",
       {{{"entries",
          {{{"type", "file"}, {"path", "/data/hello.txt"}, {"content", "hello from the image\n"}},
           {{"type", "file"}, {"path", "/etc/passwd"}, {"content", "image-passwd\n"}},
           {{"type", "symlink"}, {"path", "/data/passwd"}, {"target", "/etc/passwd"}},
           {{"type", "symlink"}, {"path", "/data/up"}, {"target", "../../../../.."}}}}}}},
      {"config", nlohmann::json::object()}};
  nlohmann::json pushed = pushImage(spec);
  const std::string ref = pushed["ref"];
  e.pull(ref);
  const std::string image_id = imageStatus(e.d, ref).image().id();
  ASSERT_FALSE(image_id.empty());

  auto cfg = e.containerConfig("iv");
  auto volume = [&](const std::string& at, const std::string& sub_path) {
    auto* m = cfg.add_mounts();
    m->set_container_path(at);
    m->mutable_image()->set_image(image_id);  // kubelet sends the image id
    m->set_readonly(true);
    m->set_image_sub_path(sub_path);
  };
  volume("/iv", "");
  volume("/data", "data");
  volume("/file", "data/passwd");  // a symlink in the image: resolved inside it
  volume("/up", "data/up");        // climbing out stops at the image's root
  std::string id = e.run(cfg);
  EXPECT_EQ(e.execOut(id, {"cat", "/iv/data/hello.txt", "/data/hello.txt", "/file"}),
            "hello from the image\nhello from the image\nimage-passwd\n");
  EXPECT_EQ(e.execOut(id, {"ls", "/up"}), "data\netc\n");
  EXPECT_EQ(e.execOut(id, {"sh", "-c", "touch /iv/x 2>&1; touch /data/x 2>&1; true"}),
            "touch: /iv/x: Read-only file system\ntouch: /data/x: Read-only file system\n");
  // The status echoes the image (kubelet's image GC reads it to keep the image).
  v1::ContainerStatusResponse st = e.status(id);
  ASSERT_EQ(st.status().mounts_size(), 4);
  EXPECT_EQ(st.status().mounts(0).image().image(), image_id);
  std::string dir = e.d.state() + "/containers/" + id + "/image-volumes";
  EXPECT_TRUE(std::filesystem::exists(dir + "/0/data/hello.txt"));

  // Bad requests are named, and leave nothing mounted.
  struct Bad {
    std::string image, sub_path, host_path;
    bool readonly;
    grpc::StatusCode code;
    std::string says;
  };
  const Bad bads[] = {
      {image_id, "", "/tmp", true, grpc::StatusCode::INVALID_ARGUMENT, "host_path must be empty"},
      {image_id, "", "", false, grpc::StatusCode::INVALID_ARGUMENT, "must be read-only"},
      {image_id, "../etc", "", true, grpc::StatusCode::INVALID_ARGUMENT, "leads out of the image"},
      {image_id, "/data", "", true, grpc::StatusCode::INVALID_ARGUMENT, "is absolute"},
      {image_id, "nope", "", true, grpc::StatusCode::NOT_FOUND, "is not in the image"},
      {"sha256:" + std::string(64, 'a'), "", "", true, grpc::StatusCode::NOT_FOUND,
       "not found: pull it first"},
  };
  int n = 0;
  for (const Bad& b : bads) {
    auto bad = e.containerConfig("bad-" + std::to_string(n++));
    auto* m = bad.add_mounts();
    m->set_container_path("/v");
    m->mutable_image()->set_image(b.image);
    m->set_image_sub_path(b.sub_path);
    m->set_host_path(b.host_path);
    m->set_readonly(b.readonly);
    std::string none;
    grpc::Status s = e.create(bad, &none);
    EXPECT_EQ(s.error_code(), b.code) << s.error_message();
    EXPECT_NE(s.error_message().find("ImageVolumeMountFailed: "), std::string::npos)
        << s.error_message();
    EXPECT_NE(s.error_message().find(b.says), std::string::npos) << s.error_message();
  }
  auto mounted = [] {
    std::ifstream in("/proc/self/mountinfo");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all;
  };
  EXPECT_EQ(mounted().find("/bad-"), std::string::npos);

  // Removing the image keeps the volume readable; removing the container releases it.
  ASSERT_TRUE(removeImage(e.d, ref).ok());
  EXPECT_EQ(e.execOut(id, {"cat", "/data/hello.txt"}), "hello from the image\n");
  ASSERT_TRUE(e.stop(id, 0).ok());
  ASSERT_TRUE(e.remove(id).ok()) << e.d.log();
  EXPECT_EQ(mounted().find(dir), std::string::npos) << "image volume still mounted";
  EXPECT_FALSE(std::filesystem::exists(dir));
  std::error_code ec;
  for (const auto& s : std::filesystem::directory_iterator(e.d.root() + "/snapshots", ec)) {
    EXPECT_EQ(s.path().filename().string().find("-iv"), std::string::npos) << s.path();
  }
}

// CDI devices, by CDI_devices and by cdi.k8s.io/ annotation, from a YAML spec file read when the
// container is created: a device node, environment, a mount; an unknown device is named.
TEST(ContainerTest, CdiDevices) {
  const std::string cdi = "/tmp/berth-cdi-" + std::to_string(::getpid());
  std::filesystem::create_directories(cdi + "/payload");
  std::ofstream(cdi + "/payload/file") << "from the CDI mount\n";
  struct Remove {
    std::string dir;
    ~Remove() { std::filesystem::remove_all(dir); }
  } remove{cdi};
  PodEnv e("cdi", "[cri]\ncdi_spec_dirs = [\"" + cdi + "/specs\"]\n");
  ASSERT_FALSE(e.pod.empty());
  std::filesystem::create_directories(cdi + "/specs");
  std::ofstream(cdi + "/specs/berth.yaml") << "cdiVersion: \"0.6.0\"\n"
                                              "kind: berth.test/dev\n"
                                              "devices:\n"
                                              "  - name: one\n"
                                              "    containerEdits:\n"
                                              "      env: [CDI_ONE=1]\n"
                                              "      deviceNodes:\n"
                                              "        - path: /dev/berth-null\n"
                                              "          hostPath: /dev/null\n"
                                              "          permissions: rw\n"
                                              "      mounts:\n"
                                              "        - hostPath: " +
                                                  cdi +
                                                  "/payload\n"
                                                  "          containerPath: /cdi-payload\n"
                                                  "          options: [ro, rbind]\n"
                                                  "  - name: two\n"
                                                  "    containerEdits:\n"
                                                  "      env: [CDI_TWO=2]\n";
  auto cfg = e.containerConfig("cdi");
  cfg.add_cdi_devices()->set_name("berth.test/dev=one");
  (*cfg.mutable_annotations())["cdi.k8s.io/extra"] = "berth.test/dev=two";
  std::string id = e.run(cfg);
  EXPECT_EQ(e.execOut(id, {"sh", "-c",
                           "echo x > /dev/berth-null && echo written; echo $CDI_ONE$CDI_TWO; "
                           "cat /cdi-payload/file"}),
            "written\n12\nfrom the CDI mount\n");

  auto unknown = e.containerConfig("unknown");
  unknown.add_cdi_devices()->set_name("berth.test/dev=three");
  std::string none;
  grpc::Status st = e.create(unknown, &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("unresolvable CDI devices berth.test/dev=three"),
            std::string::npos)
      << st.error_message();
  auto annotated = e.containerConfig("bad-annotation");
  (*annotated.mutable_annotations())["cdi.k8s.io/x"] = "nonsense";
  st = e.create(annotated, &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("\"nonsense\" is not a vendor/class=name device"),
            std::string::npos)
      << st.error_message();
}

TEST(ContainerTest, SeccompProfiles) {
  PodEnv e("seccomp");
  ASSERT_FALSE(e.pod.empty());
  auto seccompMode = [&](const std::string& id) {
    std::string status = e.execOut(id, {"cat", "/proc/self/status"});
    std::smatch m;
    return std::regex_search(status, m, std::regex("Seccomp:\\t(\\d)")) ? std::string(m[1]) : "?";
  };
  auto cfg = e.containerConfig("default");
  cfg.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
      v1::SecurityProfile::RuntimeDefault);
  std::string def = e.run(cfg);
  EXPECT_EQ(seccompMode(def), "2");
  // The built-in default refuses what containerd's does, e.g. unshare of a user namespace.
  v1::ExecSyncResponse r;
  ASSERT_TRUE(e.exec(def, {"unshare", "-U", "true"}, &r).ok());
  EXPECT_NE(r.exit_code(), 0);

  cfg = e.containerConfig("unconfined");
  cfg.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
      v1::SecurityProfile::Unconfined);
  EXPECT_EQ(seccompMode(e.run(cfg)), "0");

  std::string profile = e.d.dir() + "/no-mkdir.json";
  std::ofstream(profile) << R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]})";
  cfg = e.containerConfig("localhost");
  auto* sp = cfg.mutable_linux()->mutable_security_context()->mutable_seccomp();
  sp->set_profile_type(v1::SecurityProfile::Localhost);
  sp->set_localhost_ref(profile);
  std::string local = e.run(cfg);
  ASSERT_TRUE(e.exec(local, {"mkdir", "/tmp/d"}, &r).ok());
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();

  // A missing profile file is NotFound naming it.
  sp->set_localhost_ref(e.d.dir() + "/missing.json");
  cfg.mutable_metadata()->set_name("missing");
  std::string id;
  grpc::Status st = e.create(cfg, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_NE(st.error_message().find("missing.json"), std::string::npos) << st.error_message();
}

// The cgroup file of `controller` for `pid`, seen from the host (v1 hybrid or v2).
std::string cgroupFile(int pid, const std::string& v1_controller, const std::string& v1_file,
                       const std::string& v2_file) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/cgroup"));
  std::string line, v2_path;
  while (std::getline(in, line)) {
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    for (const auto& c : std::vector<std::string>{controllers}) {
      if (("," + c + ",").find("," + v1_controller + ",") != std::string::npos) {
        return "/sys/fs/cgroup/" + v1_controller + path + "/" + v1_file;
      }
    }
    if (controllers.empty()) v2_path = path;
  }
  return "/sys/fs/cgroup" + v2_path + "/" + v2_file;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST(ContainerTest, MemoryLimitUpdateAndOomKill) {
  PodEnv e("memory");
  ASSERT_FALSE(e.pod.empty());
  auto cfg = e.containerConfig("limited");
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  cfg.mutable_linux()->mutable_resources()->set_cpu_shares(512);
  std::string id = e.run(cfg);
  int pid = nlohmann::json::parse(e.status(id, true).info().at("info"))["pid"];
  std::string file = cgroupFile(pid, "memory", "memory.limit_in_bytes", "memory.max");
  EXPECT_EQ(trim(slurp(file)), std::to_string(64 << 20)) << file;
  EXPECT_EQ(e.status(id).status().resources().linux().memory_limit_in_bytes(), 64 << 20);

  // UpdateContainerResources changes the live cgroup and the reported resources.
  v1::UpdateContainerResourcesRequest ureq;
  ureq.set_container_id(id);
  ureq.mutable_linux()->set_memory_limit_in_bytes(96 << 20);
  v1::UpdateContainerResourcesResponse uresp;
  auto ctx = Berthd::context(30);
  grpc::Status st = e.d.runtime().UpdateContainerResources(ctx.get(), ureq, &uresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(trim(slurp(file)), std::to_string(96 << 20));
  EXPECT_EQ(e.status(id).status().resources().linux().memory_limit_in_bytes(), 96 << 20);

  // A process that outgrows its limit is OOM-killed and reported so.
  cfg = e.containerConfig("hog", {"sh", "-c", "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done"});
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
  std::string hog = e.run(cfg);
  auto s = e.waitExited(hog, 60);
  EXPECT_EQ(s.reason(), "OOMKilled") << s.exit_code();
  EXPECT_EQ(s.exit_code(), 128 + SIGKILL);
}

TEST(ContainerTest, StopSignalFromImageIsHonoured) {
  PodEnv e("stopsignal");
  ASSERT_FALSE(e.pod.empty());
  nlohmann::json spec = {
      {"repo", "berth-test/stopsignal"},
      {"tags", {"1.0"}},
      {"layers", {{{"preset", "busybox"}}}},
      {"config",
       {{"Env", {"PATH=/bin"}},
        {"Cmd", {"sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done"}},
        {"StopSignal", "SIGUSR1"}}}};
  std::string image = pushImage(spec)["ref"];
  e.pull(image);
  auto cfg = e.containerConfig("trap", {});
  cfg.mutable_image()->set_image(image);
  std::string id = e.run(cfg);
  EXPECT_EQ(v1::Signal_Name(e.status(id).status().stop_signal()), "SIGUSR1")
      << "the effective stop signal";
  for (int i = 0; i < 250 && logLines(e.logPath("trap")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(e.stop(id, 20).ok());
  auto s = e.status(id).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.reason(), "Completed");
  EXPECT_EQ(logLines(e.logPath("trap")), (std::vector<std::string>{"ready", "got-usr1"}));

  // A process ignoring the signal is killed after the timeout.
  cfg = e.containerConfig("stubborn", {"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"});
  id = e.run(cfg);
  EXPECT_EQ(v1::Signal_Name(e.status(id).status().stop_signal()), "SIGTERM");
  for (int i = 0; i < 250 && logLines(e.logPath("stubborn")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(e.stop(id, 1).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
  EXPECT_EQ(e.status(id).status().exit_code(), 128 + SIGKILL);

  // kubelet names real-time signals SIGRTMINPLUS3 (ContainerStopSignals).
  cfg = e.containerConfig("rt");
  cfg.set_stop_signal(v1::SIGRTMINPLUS3);
  id = e.run(cfg);
  EXPECT_EQ(e.status(id).status().stop_signal(), v1::SIGRTMINPLUS3);
  ASSERT_TRUE(e.stop(id, 1).ok());
  EXPECT_EQ(e.status(id).status().state(), v1::CONTAINER_EXITED);
}

// Stops of one container do not queue behind each other (issue 14): a kill (StopPodSandbox's,
// or StopContainer with no grace) ends a container at once even while another call's grace
// period runs; graceful stops of one container join; status answers throughout.
TEST(ContainerTest, AKillDoesNotWaitForAnotherStopsGracePeriod) {
  PodEnv e("stopjoin");
  ASSERT_FALSE(e.pod.empty());
  auto cfg = e.containerConfig(
      "stubborn", {"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"});
  std::string id = e.run(cfg);
  for (int i = 0; i < 250 && logLines(e.logPath("stubborn")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  grpc::Status graceful[2];
  std::thread first([&] { graceful[0] = e.stop(id, 60); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::thread second([&] { graceful[1] = e.stop(id, 60); });  // joins the first
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(e.status(id).status().state(), v1::CONTAINER_RUNNING);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500))
      << "status waited for the stop";
  EXPECT_TRUE(stopPod(e.d, e.pod).ok()) << e.d.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10))
      << "StopPodSandbox waited for StopContainer's grace period";
  first.join();
  second.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_TRUE(graceful[0].ok()) << graceful[0].error_message();
  EXPECT_TRUE(graceful[1].ok()) << graceful[1].error_message();
  auto st = e.status(id).status();
  EXPECT_EQ(st.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st.exit_code(), 128 + SIGKILL);
}

TEST(ContainerTest, CriLogsWithPartialLinesAndReopen) {
  PodEnv e("logs", "[cri]\nmax_container_log_line_size = 256\n");
  ASSERT_FALSE(e.pod.empty());
  auto cfg = e.containerConfig(
      "writer", {"sh", "-c",
                 "printf 'short\\n'; printf '%0600d\\n' 0; echo oops >&2; "
                 "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after-reopen"});
  std::string id = e.run(cfg);
  std::string path = e.logPath("writer");
  for (int i = 0; i < 250 && logLines(path, "stderr").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string text = slurp(path);
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> tags;
  static const std::regex kLine(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) ([PF]) (.*)$)");
  while (std::getline(in, line)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, kLine)) << line;
    tags.push_back(std::string(m[2]) + " " + std::string(m[3]) + " " + std::to_string(m[4].length()));
  }
  EXPECT_EQ(tags, (std::vector<std::string>{"stdout F 5", "stdout P 256", "stdout P 256",
                                            "stdout F 88", "stderr F 4"}))
      << text;
  EXPECT_EQ(logLines(path)[1], std::string(600, '0'));

  // Rotation: kubelet renames the file, then asks for a reopen.
  std::filesystem::rename(path, path + ".1");
  v1::ReopenContainerLogRequest req;
  req.set_container_id(id);
  v1::ReopenContainerLogResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = e.d.runtime().ReopenContainerLog(ctx.get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(e.execOut(id, {"touch", "/tmp/go"}).empty());
  e.waitExited(id);
  EXPECT_EQ(logLines(path), std::vector<std::string>{"after-reopen"});
  // A stopped container's log cannot be reopened.
  ctx = Berthd::context();
  EXPECT_EQ(e.d.runtime().ReopenContainerLog(ctx.get(), req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(ContainerTest, TtyContainerWritesItsTerminalToTheLog) {
  PodEnv e("tty");
  ASSERT_FALSE(e.pod.empty());
  auto cfg = e.containerConfig(
      "term", {"sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty; echo err-too >&2"});
  cfg.set_tty(true);
  cfg.set_stdin(true);
  std::string id = e.run(cfg);
  auto s = e.waitExited(id);
  EXPECT_EQ(s.exit_code(), 0);
  // One stream: a terminal has no separate stderr. Its CR LF line ends are line ends.
  std::vector<std::string> lines = logLines(e.logPath("term"));
  ASSERT_EQ(lines.size(), 3u) << slurp(e.logPath("term"));
  EXPECT_EQ(lines[0], "is-a-tty");
  EXPECT_EQ(lines[1].rfind("/dev/pts/", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2], "err-too");
  EXPECT_TRUE(logLines(e.logPath("term"), "stderr").empty());
  // The console socket's temporary folder is gone.
  for (const auto& entry : std::filesystem::directory_iterator("/tmp")) {
    EXPECT_EQ(entry.path().filename().string().rfind("berth-console-", 0), std::string::npos)
        << entry.path();
  }
  EXPECT_TRUE(e.remove(id).ok());
}

TEST(ContainerTest, ExecSyncOutputExitCodeAndTimeout) {
  PodEnv e("exec");
  ASSERT_FALSE(e.pod.empty());
  std::string id = e.run(e.containerConfig("target"));
  v1::ExecSyncResponse r;
  ASSERT_TRUE(e.exec(id, {"sh", "-c", "echo out; echo err >&2; exit 3"}, &r).ok());
  EXPECT_EQ(r.stdout(), "out\n");
  EXPECT_EQ(r.stderr(), "err\n");
  EXPECT_EQ(r.exit_code(), 3);

  // A timeout kills the exec'd process tree and answers DeadlineExceeded.
  auto t0 = std::chrono::steady_clock::now();
  grpc::Status st = e.exec(id, {"sh", "-c", "sleep 37 & sleep 38"}, &r, 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  std::string ps = e.execOut(id, {"ps", "-o", "args"});
  EXPECT_EQ(ps.find("sleep 37"), std::string::npos) << ps;
  EXPECT_EQ(ps.find("sleep 38"), std::string::npos) << ps;

  // Not running: FailedPrecondition.
  ASSERT_TRUE(e.stop(id, 0).ok());
  st = e.exec(id, {"true"}, &r);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
}

TEST(ContainerTest, ListFiltersAndStream) {
  PodEnv e("list");
  ASSERT_FALSE(e.pod.empty());
  std::string a = e.run(e.containerConfig("a"));
  std::string b;
  ASSERT_TRUE(e.create(e.containerConfig("b"), &b).ok());
  std::string c = e.run(e.containerConfig("c", {"true"}));
  e.waitExited(c);

  EXPECT_EQ(e.list().size(), 3u);
  v1::ContainerFilter f;
  f.set_id(a.substr(0, 10));
  auto got = e.list(&f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id(), a);
  EXPECT_EQ(got[0].pod_sandbox_id(), e.pod);
  EXPECT_EQ(got[0].image().image(), e.busybox);
  EXPECT_EQ(got[0].state(), v1::CONTAINER_RUNNING);

  f.Clear();
  f.mutable_state()->set_state(v1::CONTAINER_CREATED);
  got = e.list(&f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id(), b);
  f.Clear();
  f.mutable_state()->set_state(v1::CONTAINER_EXITED);
  got = e.list(&f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id(), c);

  f.Clear();
  (*f.mutable_label_selector())["app"] = "b";
  got = e.list(&f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id(), b);

  f.Clear();
  f.set_pod_sandbox_id(e.pod.substr(0, 12));
  EXPECT_EQ(e.list(&f).size(), 3u);
  f.set_pod_sandbox_id("0000000000000000");
  EXPECT_TRUE(e.list(&f).empty());

  v1::StreamContainersRequest sreq;
  auto ctx = Berthd::context();
  auto reader = e.d.runtime().StreamContainers(ctx.get(), sreq);
  v1::StreamContainersResponse batch;
  size_t n = 0;
  while (reader->Read(&batch)) n += batch.containers_size();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(n, 3u);

  // Stopping the pod stops its containers; removing it removes them.
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(e.pod);
  v1::StopPodSandboxResponse stop_resp;
  ctx = Berthd::context(60);
  ASSERT_TRUE(e.d.runtime().StopPodSandbox(ctx.get(), stop, &stop_resp).ok());
  EXPECT_EQ(e.status(a).status().state(), v1::CONTAINER_EXITED);
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(e.pod);
  v1::RemovePodSandboxResponse rm_resp;
  ctx = Berthd::context(60);
  ASSERT_TRUE(e.d.runtime().RemovePodSandbox(ctx.get(), rm, &rm_resp).ok());
  EXPECT_TRUE(e.list().empty());
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(e.d.state() + "/containers", ec));
}

TEST(ContainerTest, ExitWhileBerthdIsDownIsReportedAfterRestart) {
  PodEnv e("restart");
  ASSERT_FALSE(e.pod.empty());
  std::string quick = e.run(e.containerConfig("quick", {"sh", "-c", "sleep 1; exit 7"}));
  std::string stays = e.run(e.containerConfig("stays"));
  ASSERT_EQ(e.d.stop(SIGKILL), -SIGKILL);
  int64_t down_at = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  int64_t up_at = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // What a create cut short by the crash would leave: a rootfs folder without a record.
  std::string orphan = e.d.state() + "/containers/" + std::string(64, 'a');
  std::filesystem::create_directories(orphan + "/rootfs");
  ASSERT_TRUE(e.d.start()) << e.d.log();
  EXPECT_FALSE(std::filesystem::exists(orphan));
  auto s = e.waitExited(quick);
  EXPECT_EQ(s.exit_code(), 7);
  EXPECT_EQ(s.reason(), "Error");
  EXPECT_GT(s.finished_at(), down_at - 2'000'000'000);
  EXPECT_LT(s.finished_at(), up_at);
  // The other one still runs and can be stopped through the reconnected shim.
  EXPECT_EQ(e.status(stays).status().state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(e.execOut(stays, {"echo", "hi"}), "hi\n");
  ASSERT_TRUE(e.stop(stays, 0).ok());
  EXPECT_EQ(e.status(stays).status().state(), v1::CONTAINER_EXITED);
}

// A child OOM-killed while the container's init runs on: the shim pushes the OOM kill as an
// event at once, and ContainerStatus says OOMKilled while the container is RUNNING (as
// containerd); the exit keeps it. A kill while berthd is down is replayed after its restart.
TEST(ContainerTest, OomKillWhileRunningIsReportedAtOnceAndAfterARestart) {
  PodEnv e("oomlive");
  ASSERT_FALSE(e.pod.empty());
  auto hog = [&](const std::string& name, const std::string& delay) {
    auto cfg =
        e.containerConfig(name, {"sh", "-c",
                                 "sleep " + delay +
                                     "; sh -c 'a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done'; "
                                     "sleep 3600"});
    cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
    return e.run(cfg);
  };
  std::string now = hog("now", "0");
  auto oomKilled = [&](const std::string& id) {
    return e.status(id).status().reason() == "OOMKilled";
  };
  for (int i = 0; i < 300 && !oomKilled(now); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto s = e.status(now).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(s.reason(), "OOMKilled") << e.d.log();

  // Killed while berthd is down: replayed by the shim to the restarted berthd.
  std::string later = hog("later", "2");
  ASSERT_EQ(e.d.stop(SIGKILL), -SIGKILL);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  ASSERT_TRUE(e.d.start()) << e.d.log();
  for (int i = 0; i < 200 && !oomKilled(later); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  s = e.status(later).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(s.reason(), "OOMKilled") << e.d.log();
  EXPECT_EQ(e.status(now).status().reason(), "OOMKilled") << "persisted across the restart";

  ASSERT_TRUE(e.stop(now, 0).ok());
  s = e.status(now).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.reason(), "OOMKilled");
  EXPECT_EQ(s.exit_code(), 128 + SIGKILL);
}

TEST(ContainerTest, FailedCleanupIsRetriedWithBackoff) {
  FlakyRuntime flaky;
  PodEnv e("cflaky", "[cri.runtimes.flaky]\nruntime_path = \"" + flaky.wrapper + "\"\n", "flaky");
  ASSERT_FALSE(e.pod.empty());
  std::string id = e.run(e.containerConfig("c"));
  std::ofstream(flaky.marker) << "x";
  ASSERT_TRUE(e.stop(id, 0).ok());
  EXPECT_EQ(e.status(id).status().state(), v1::CONTAINER_EXITED);
  const std::string key = "container/" + id;
  for (int i = 0; i < 200 && e.d.log().find(key + ": clean-up failed again") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(e.d.log().find("clean-up failed, retrying with back-off"), std::string::npos) << e.d.log();
  EXPECT_NE(e.d.log().find(key + ": clean-up failed again"), std::string::npos) << e.d.log();
  EXPECT_TRUE(std::filesystem::exists(e.d.state() + "/runtime/flaky/" + id));
  // Removing now fails, naming the cause; the container stays, not marked removing.
  grpc::Status st = e.remove(id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("injected delete failure"), std::string::npos) << st.error_message();
  EXPECT_FALSE(nlohmann::json::parse(e.status(id, true).info().at("info"))["removing"].get<bool>());

  std::filesystem::remove(flaky.marker);
  for (int i = 0; i < 400 && e.d.log().find(key + ": clean-up succeeded after") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(e.d.log().find(key + ": clean-up succeeded after"), std::string::npos) << e.d.log();
  EXPECT_FALSE(std::filesystem::exists(e.d.state() + "/runtime/flaky/" + id));
  EXPECT_TRUE(e.remove(id).ok());
}

TEST(ContainerTest, BerthctlContainerVerbs) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {berthctlPath(), "-r", d.endpoint()});
    return runProgram(args, 120);
  };
  std::string image = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  std::string pod_cfg = d.dir() + "/pod.json";
  std::ofstream(pod_cfg) << R"({"metadata":{"name":"ctl","namespace":"default","uid":"u-ctl"},
    "log_directory":")" << d.dir() << R"(/logs",
    "linux":{"security_context":{"namespace_options":{"network":2}}}})";
  std::string ctr_cfg = d.dir() + "/ctr.json";
  std::ofstream(ctr_cfg) << R"({"metadata":{"name":"app"},"image":{"image":")" << image
                         << R"("},"command":["sh","-c","echo one; echo two; echo err >&2; sleep 3600"],
    "log_path":"app.log","labels":{"tier":"web"}})";
  // run: pull, pod, container, start.
  RunResult run = ctl({"run", "--pull", ctr_cfg, pod_cfg});
  ASSERT_EQ(run.exit_code, 0) << run.err << d.log();
  std::string id = run.out.substr(0, run.out.find('\n'));
  ASSERT_EQ(id.size(), 64u) << run.out;

  RunResult ps = ctl({"ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_NE(ps.out.find(id.substr(0, 13)), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("Running"), std::string::npos) << ps.out;
  EXPECT_EQ(ctl({"ps", "-q", "--label", "tier=db"}).out, "");
  EXPECT_EQ(ctl({"ps", "-q", "--label", "tier=web"}).out, id + "\n");

  RunResult exec = ctl({"exec", id.substr(0, 8), "sh", "-c", "echo hi; exit 4"});
  EXPECT_EQ(exec.exit_code, 4) << exec.err;
  EXPECT_EQ(exec.out, "hi\n");

  RunResult inspect = ctl({"inspect", id.substr(0, 8)});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["status"]["state"], "CONTAINER_RUNNING");
  EXPECT_EQ(j["info"]["sandboxID"].get<std::string>().size(), 64u);

  RunResult logs;
  for (int i = 0; i < 100; ++i) {
    logs = ctl({"logs", id});
    if (logs.err.find("err") != std::string::npos && logs.out == "one\ntwo\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "one\ntwo\n");
  EXPECT_EQ(logs.err, "err\n");
  RunResult tail = ctl({"logs", "--tail", "1", id});
  EXPECT_EQ(tail.out.size() + tail.err.size(), 4u) << "one line: " << tail.out << tail.err;

  RunResult stop = ctl({"stop", "-t", "0", id});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(ctl({"ps", "-q"}).out, "");
  EXPECT_NE(ctl({"ps", "-a"}).out.find("Exited"), std::string::npos);
  RunResult rm = ctl({"rm", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(ctl({"ps", "-a", "-q"}).out, "");
  RunResult bad = ctl({"start", "0000dead"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("StartContainer failed: NotFound"), std::string::npos) << bad.err;
}

TEST(ContainerTest, TwoEventSubscribersSeeTheLifecycleWithStatuses) {
  PodEnv e("events");
  ASSERT_FALSE(e.pod.empty());
  std::vector<std::unique_ptr<EventRecorder>> subs;
  for (int i = 0; i < 2; ++i) subs.push_back(std::make_unique<EventRecorder>(e.d, 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // both streams are subscribed
  std::string id = e.run(e.containerConfig("watched"));
  EXPECT_TRUE(e.stop(id, 0).ok());
  EXPECT_TRUE(e.remove(id).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (auto& s : subs) s->stop();

  for (const auto& s : subs) {
    std::vector<v1::ContainerEventType> types;
    for (const auto& ev : s->events()) {
      if (ev.container_id() != id) continue;
      types.push_back(ev.container_event_type());
      EXPECT_GT(ev.created_at(), 0);
      EXPECT_EQ(ev.pod_sandbox_status().id(), e.pod);
      EXPECT_EQ(ev.pod_sandbox_status().state(), v1::SANDBOX_READY);
      // The container's status as it is after the change (gone once deleted).
      const v1::ContainerStatus* mine = nullptr;
      for (const auto& c : ev.containers_statuses()) {
        if (c.id() == id) mine = &c;
      }
      switch (ev.container_event_type()) {
        case v1::CONTAINER_CREATED_EVENT:
          ASSERT_NE(mine, nullptr);
          EXPECT_EQ(mine->state(), v1::CONTAINER_CREATED);
          break;
        case v1::CONTAINER_STARTED_EVENT:
          ASSERT_NE(mine, nullptr);
          EXPECT_EQ(mine->state(), v1::CONTAINER_RUNNING);
          break;
        case v1::CONTAINER_STOPPED_EVENT:
          ASSERT_NE(mine, nullptr);
          EXPECT_EQ(mine->state(), v1::CONTAINER_EXITED);
          break;
        case v1::CONTAINER_DELETED_EVENT:
          EXPECT_EQ(mine, nullptr);
          break;
        default:
          break;
      }
    }
    EXPECT_EQ(types, (std::vector<v1::ContainerEventType>{
                         v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                         v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT}));
  }
}

TEST(ContainerTest, StatsRiseUnderLoadAndCountTheWritableLayer) {
  PodEnv e("stats", "[cri]\nstats_collect_period_seconds = 1\n");
  ASSERT_FALSE(e.pod.empty());
  std::string id = e.run(e.containerConfig("busy"));
  auto stats = [&]() {
    v1::ContainerStatsRequest req;
    req.set_container_id(id);
    v1::ContainerStatsResponse resp;
    auto ctx = Berthd::context();
    grpc::Status st = e.d.runtime().ContainerStats(ctx.get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.stats();
  };
  // The first call starts tracking; samples follow within a period.
  v1::ContainerStats before;
  for (int i = 0; i < 100; ++i) {
    before = stats();
    if (before.has_cpu() && before.has_memory() && before.has_writable_layer()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(before.has_cpu() && before.has_memory() && before.has_writable_layer())
      << before.DebugString() << e.d.log();
  EXPECT_EQ(before.attributes().id(), id);
  EXPECT_EQ(before.attributes().metadata().name(), "busy");

  // Load: CPU for a while, 32 MiB kept in the pod's shm (charged to the container's memory
  // cgroup), 20 MiB written into the writable layer.
  EXPECT_TRUE(e.execOut(id, {"sh", "-c",
                             "dd if=/dev/zero of=/dev/shm/hold bs=1M count=32 2>/dev/null; "
                             "dd if=/dev/zero of=/data20 bs=1M count=20 2>/dev/null; sync; "
                             "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"})
                  .empty());
  v1::ContainerStats after;
  bool risen = false;
  for (int i = 0; i < 100 && !risen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = stats();
    risen = after.cpu().usage_core_nano_seconds().value() >
                before.cpu().usage_core_nano_seconds().value() + 100'000'000 &&
            after.memory().working_set_bytes().value() >=
                before.memory().working_set_bytes().value() + (30u << 20) &&
            after.writable_layer().used_bytes().value() >= (20u << 20);
  }
  EXPECT_TRUE(risen) << "before:\n" << before.DebugString() << "after:\n" << after.DebugString();
  EXPECT_GT(after.cpu().usage_nano_cores().value(), 0u);
  EXPECT_GT(after.writable_layer().inodes_used().value(), 0u);

  // The pod's stats list its running containers; list filters work.
  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(e.pod);
  v1::PodSandboxStatsResponse presp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(e.d.runtime().PodSandboxStats(ctx.get(), preq, &presp).ok());
  EXPECT_EQ(presp.stats().attributes().id(), e.pod);
  ASSERT_EQ(presp.stats().linux().containers_size(), 1);
  EXPECT_EQ(presp.stats().linux().containers(0).attributes().id(), id);
  v1::ListContainerStatsRequest lreq;
  lreq.mutable_filter()->set_pod_sandbox_id(e.pod);
  v1::ListContainerStatsResponse lresp;
  ctx = Berthd::context();
  ASSERT_TRUE(e.d.runtime().ListContainerStats(ctx.get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.stats_size(), 1);
  (*lreq.mutable_filter()->mutable_label_selector())["app"] = "other";
  lresp.Clear();
  ctx = Berthd::context();
  ASSERT_TRUE(e.d.runtime().ListContainerStats(ctx.get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.stats_size(), 0);
  // A stopped container has no stats entry in the list any more.
  ASSERT_TRUE(e.stop(id, 0).ok());
  lreq.Clear();
  lresp.Clear();
  ctx = Berthd::context();
  ASSERT_TRUE(e.d.runtime().ListContainerStats(ctx.get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.stats_size(), 0);
}

TEST(ContainerTest, BerthctlStatsStatspAndEvents) {
  PodEnv e("ctlstats", "[cri]\nstats_collect_period_seconds = 1\n");
  ASSERT_FALSE(e.pod.empty());
  auto ctl = [&](std::vector<std::string> args, int timeout_s = 60) {
    args.insert(args.begin(), {berthctlPath(), "-r", e.d.endpoint()});
    return runProgram(args, timeout_s);
  };
  // `events` follows the stream; it is ended (killed) after the container's lifecycle.
  RunResult events;
  std::thread follower([&] { events = ctl({"-o", "json", "events"}, 4); });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join_on_return{follower};
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  std::string id = e.run(e.containerConfig("observed"));

  nlohmann::json stats;
  for (int i = 0; i < 50; ++i) {
    RunResult r = ctl({"-o", "json", "stats", "-p", e.pod.substr(0, 10)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    stats = nlohmann::json::parse(r.out);
    if (stats.contains("stats") && stats["stats"][0].contains("cpu")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(stats["stats"][0].contains("cpu")) << stats.dump();
  EXPECT_EQ(stats["stats"][0]["attributes"]["id"], id);
  RunResult table = ctl({"stats"});
  EXPECT_NE(table.out.find(id.substr(0, 13)), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("observed"), std::string::npos) << table.out;
  RunResult pods = ctl({"statsp"});
  ASSERT_EQ(pods.exit_code, 0) << pods.err;
  EXPECT_NE(pods.out.find(e.pod.substr(0, 13)), std::string::npos) << pods.out;
  ASSERT_TRUE(e.stop(id, 0).ok());
  follower.join();
  std::vector<std::string> seen;
  std::istringstream lines(events.out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("containerId", "") == id) {
      seen.push_back(j.value("containerEventType", "CONTAINER_CREATED_EVENT"));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT",
                                            "CONTAINER_STOPPED_EVENT"}))
      << events.out << events.err;
}

}  // namespace
}  // namespace berth::testing
