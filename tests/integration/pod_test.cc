// Pod sandboxes with real runc through berth-shim: lifecycle, namespaces seen from the host,
// DNS, verbose info, exits from outside, duplicates, idempotent teardown, restarts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "event_recorder.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;

v1::PodSandboxConfig podConfig(const std::string& name, v1::NamespaceMode network = v1::NODE) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("default");
  c.mutable_metadata()->set_uid("uid-" + name);
  c.mutable_metadata()->set_attempt(1);
  c.set_hostname(name + "-host");
  (*c.mutable_labels())["app"] = name;
  (*c.mutable_annotations())["note"] = "berth test";
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(network);
  return c;
}

std::string runPodOk(Berthd& d, const v1::PodSandboxConfig& c) {
  std::string id;
  grpc::Status st = runPod(d, c, &id);
  EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  return id;
}

std::vector<v1::PodSandbox> listPods(Berthd& d, const v1::PodSandboxFilter* f = nullptr) {
  v1::ListPodSandboxRequest req;
  if (f != nullptr) *req.mutable_filter() = *f;
  v1::ListPodSandboxResponse resp;
  auto ctx = Berthd::context();
  EXPECT_TRUE(d.runtime().ListPodSandbox(ctx.get(), req, &resp).ok());
  return {resp.items().begin(), resp.items().end()};
}

std::string nsOf(int pid, const char* ns) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + ns, ec).string();
}

bool alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// Waits until the pod reports `state` (bounded).
bool waitState(Berthd& d, const std::string& id, v1::PodSandboxState state) {
  for (int i = 0; i < 500; ++i) {
    if (podStatus(d, id).status().state() == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(PodTest, HostNetworkPodRunsAndReportsStatus) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string id = runPodOk(d, podConfig("hostnet"));
  ASSERT_EQ(id.size(), 64u);
  auto s = podStatus(d, id, true);
  EXPECT_EQ(s.status().id(), id);
  EXPECT_EQ(s.status().metadata().name(), "hostnet");
  EXPECT_EQ(s.status().metadata().uid(), "uid-hostnet");
  EXPECT_EQ(s.status().state(), v1::SANDBOX_READY);
  EXPECT_GT(s.status().created_at(), 0);
  EXPECT_EQ(s.status().linux().namespaces().options().network(), v1::NODE);
  EXPECT_EQ(s.status().labels().at("app"), "hostnet");
  EXPECT_EQ(s.status().annotations().at("note"), "berth test");
  EXPECT_GT(s.timestamp(), 0);
  ASSERT_TRUE(s.info().contains("info"));
  auto info = nlohmann::json::parse(s.info().at("info"));
  for (const char* key : {"pid", "processStatus", "netNamespaceClosed", "image", "snapshotKey",
                          "snapshotter", "runtimeHandler", "runtimeType", "runtimeOptions",
                          "config", "runtimeSpec", "cniResult", "sandboxMetadata"}) {
    EXPECT_TRUE(info.contains(key)) << key << "\n" << info.dump(2);
  }
  int pid = info["pid"];
  EXPECT_TRUE(alive(pid));
  EXPECT_EQ(info["processStatus"], "running");
  EXPECT_EQ(info["netNamespaceClosed"], false);
  EXPECT_EQ(info["runtimeType"], "io.containerd.runc.v2");
  EXPECT_EQ(info["config"]["metadata"]["name"], "hostnet");
  EXPECT_EQ(info["runtimeSpec"]["process"]["args"], nlohmann::json({"/pause"}));
  EXPECT_EQ(info["runtimeSpec"]["annotations"]["io.kubernetes.cri.sandbox-id"], id);
  EXPECT_EQ(info["sandboxMetadata"]["ID"], id);
  EXPECT_TRUE(info["cniResult"].is_null());
  // Host network: the pause shares the host's network namespace.
  EXPECT_EQ(nsOf(pid, "net"), nsOf(::getpid(), "net"));
  EXPECT_NE(nsOf(pid, "pid"), nsOf(::getpid(), "pid"));
  ASSERT_TRUE(stopPod(d, id).ok());
  EXPECT_FALSE(alive(pid));
  auto stopped = podStatus(d, id, true);
  EXPECT_EQ(stopped.status().state(), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(nlohmann::json::parse(stopped.info().at("info"))["processStatus"], "deleted");
  ASSERT_TRUE(removePod(d, id).ok());
  EXPECT_TRUE(listPods(d).empty());
}

TEST(PodTest, NamespaceModesVisibleFromHost) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  auto c = podConfig("podns", v1::POD);
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::POD);
  ns->set_ipc(v1::POD);
  std::string pod = runPodOk(d, c);
  int pid = nlohmann::json::parse(podStatus(d, pod, true).info().at("info"))["pid"];
  for (const char* n : {"net", "pid", "ipc", "uts", "mnt"}) {
    EXPECT_NE(nsOf(pid, n), nsOf(::getpid(), n)) << n;
  }
  EXPECT_EQ(slurp("/proc/" + std::to_string(pid) + "/root/etc/hostname"), "podns-host\n");

  auto h = podConfig("nodens", v1::NODE);
  auto* hns = h.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  hns->set_pid(v1::NODE);
  hns->set_ipc(v1::NODE);
  std::string host = runPodOk(d, h);
  int hpid = nlohmann::json::parse(podStatus(d, host, true).info().at("info"))["pid"];
  for (const char* n : {"net", "pid", "ipc"}) {
    EXPECT_EQ(nsOf(hpid, n), nsOf(::getpid(), n)) << n;
  }
  EXPECT_NE(nsOf(hpid, "mnt"), nsOf(::getpid(), "mnt"));
}

// The pod's seccomp profile is the pause's (as containerd applies it): RuntimeDefault filters,
// a privileged pod and an unset profile run unconfined, a missing Localhost file is named.
TEST(PodTest, PodSeccompProfileAppliesToThePause) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  auto seccompOf = [&](const std::string& pod) {
    int pid = nlohmann::json::parse(podStatus(d, pod, true).info().at("info"))["pid"];
    std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
    size_t at = status.find("Seccomp:\t");
    return at == std::string::npos ? std::string("?") : status.substr(at + 9, 1);
  };
  auto config = [](const std::string& name, std::optional<v1::SecurityProfile::ProfileType> type,
                   bool privileged) {
    v1::PodSandboxConfig c = hostNetworkPod(name);
    auto* sc = c.mutable_linux()->mutable_security_context();
    if (type) sc->mutable_seccomp()->set_profile_type(*type);
    sc->set_privileged(privileged);
    return c;
  };
  EXPECT_EQ(seccompOf(runPodOk(d, config("filtered", v1::SecurityProfile::RuntimeDefault, false))),
            "2");
  EXPECT_EQ(seccompOf(runPodOk(d, config("unset", std::nullopt, false))), "0");
  EXPECT_EQ(seccompOf(runPodOk(d, config("privileged", v1::SecurityProfile::RuntimeDefault, true))),
            "0");
  auto missing = config("missing", v1::SecurityProfile::Localhost, false);
  missing.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_localhost_ref(
      "/nonexistent/profile.json");
  std::string id;
  grpc::Status st = runPod(d, missing, &id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("pod seccomp profile"), std::string::npos)
      << st.error_message();
  EXPECT_NE(st.error_message().find("/nonexistent/profile.json"), std::string::npos)
      << st.error_message();
}

TEST(PodTest, PodNetworkNamespaceIsPinnedAndClosedOnStop) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string id = runPodOk(d, podConfig("netns", v1::POD));
  auto info = nlohmann::json::parse(podStatus(d, id, true).info().at("info"));
  std::string netns = info["sandboxMetadata"]["NetNSPath"];
  ASSERT_FALSE(netns.empty());
  struct stat a {}, b {};
  ASSERT_EQ(::stat(netns.c_str(), &a), 0);
  int pid = info["pid"];
  ASSERT_EQ(::stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "the pause joins the pinned namespace";
  ASSERT_TRUE(stopPod(d, id).ok());
  auto after = nlohmann::json::parse(podStatus(d, id, true).info().at("info"));
  EXPECT_EQ(after["netNamespaceClosed"], true);
  EXPECT_FALSE(std::filesystem::exists(netns));
}

TEST(PodTest, DnsConfigLandsInResolvConf) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  auto c = podConfig("dns", v1::POD);
  c.mutable_dns_config()->add_servers("10.0.0.10");
  c.mutable_dns_config()->add_servers("10.0.0.11");
  c.mutable_dns_config()->add_searches("default.svc.cluster.local");
  c.mutable_dns_config()->add_searches("svc.cluster.local");
  c.mutable_dns_config()->add_options("ndots:5");
  std::string id = runPodOk(d, c);
  int pid = nlohmann::json::parse(podStatus(d, id, true).info().at("info"))["pid"];
  std::string resolv = slurp("/proc/" + std::to_string(pid) + "/root/etc/resolv.conf");
  EXPECT_NE(resolv.find("nameserver 10.0.0.10\n"), std::string::npos) << resolv;
  EXPECT_NE(resolv.find("nameserver 10.0.0.11\n"), std::string::npos) << resolv;
  EXPECT_NE(resolv.find("search default.svc.cluster.local svc.cluster.local\n"), std::string::npos) << resolv;
  EXPECT_NE(resolv.find("options ndots:5\n"), std::string::npos) << resolv;
}

TEST(PodTest, PauseKilledFromOutsideTurnsPodNotReady) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string id = runPodOk(d, podConfig("killed"));
  int pid = nlohmann::json::parse(podStatus(d, id, true).info().at("info"))["pid"];
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(waitState(d, id, v1::SANDBOX_NOTREADY)) << d.log();
  auto info = nlohmann::json::parse(podStatus(d, id, true).info().at("info"));
  for (int i = 0; i < 200 && info["processStatus"] != "deleted"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    info = nlohmann::json::parse(podStatus(d, id, true).info().at("info"));
  }
  EXPECT_EQ(info["processStatus"], "deleted") << "the task is deleted after the exit";
  EXPECT_NE(d.log().find("pause exited with status 137"), std::string::npos) << d.log();
}

// Issue 13, point 4: a pod that dies on its own gets its CONTAINER_STOPPED event, with its
// NOTREADY status, on every subscriber (evented PLEG); a stop of a READY pod gets one too, and
// never two.
TEST(PodTest, PodWhosePauseDiesGetsItsStoppedEventOnEverySubscriber) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  EventRecorder a(d), b(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both streams are subscribed
  std::string dies = runPodOk(d, podConfig("dies"));
  std::string stopped = runPodOk(d, podConfig("stopped"));
  int pid = nlohmann::json::parse(podStatus(d, dies, true).info().at("info"))["pid"];
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto stoppedEvent = [](const std::string& pod) {
    return [pod](const v1::ContainerEventResponse& ev) {
      return ev.container_id() == pod &&
             ev.container_event_type() == v1::CONTAINER_STOPPED_EVENT &&
             ev.pod_sandbox_status().id() == pod &&
             ev.pod_sandbox_status().state() == v1::SANDBOX_NOTREADY;
    };
  };
  for (EventRecorder* r : {&a, &b}) EXPECT_TRUE(r->waitFor(stoppedEvent(dies))) << d.log();
  ASSERT_TRUE(stopPod(d, stopped).ok());
  ASSERT_TRUE(stopPod(d, stopped).ok());  // stopping again: no event
  for (EventRecorder* r : {&a, &b}) EXPECT_TRUE(r->waitFor(stoppedEvent(stopped))) << d.log();
  // Removed, the pod's DELETED event still carries its (last) status: evented PLEG drops an
  // event without one.
  ASSERT_TRUE(removePod(d, stopped).ok());
  for (EventRecorder* r : {&a, &b}) {
    EXPECT_TRUE(r->waitFor([&](const v1::ContainerEventResponse& ev) {
      return ev.container_id() == stopped &&
             ev.container_event_type() == v1::CONTAINER_DELETED_EVENT &&
             ev.pod_sandbox_status().id() == stopped &&
             ev.pod_sandbox_status().metadata().name() == "stopped";
    })) << d.log();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  a.stop();
  b.stop();
  for (EventRecorder* r : {&a, &b}) {
    int stops[2] = {0, 0};
    for (const auto& ev : r->events()) {
      if (ev.container_event_type() != v1::CONTAINER_STOPPED_EVENT) continue;
      if (ev.container_id() == dies) ++stops[0];
      if (ev.container_id() == stopped) ++stops[1];
    }
    EXPECT_EQ(stops[0], 1);
    EXPECT_EQ(stops[1], 1);
  }
}

TEST(PodTest, DuplicateNameIsRefusedAndBadRequestsAreNamed) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string first = runPodOk(d, podConfig("dup"));
  std::string second;
  grpc::Status st = runPod(d, podConfig("dup"), &second);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(st.error_message().find("dup_default_uid-dup_1"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find(first), std::string::npos) << st.error_message();
  auto noname = podConfig("");
  EXPECT_EQ(runPod(d, noname, &second).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto nouid = podConfig("nouid");
  nouid.mutable_metadata()->clear_uid();
  EXPECT_EQ(runPod(d, nouid, &second).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  st = runPod(d, podConfig("handler"), &second, "no-such-handler");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("no-such-handler"), std::string::npos);
  // A pod of its own user namespace is refused, never run in the host's.
  auto userns = podConfig("userns");
  userns.mutable_linux()->mutable_security_context()->mutable_namespace_options()
      ->mutable_userns_options()->set_mode(v1::POD);
  st = runPod(d, userns, &second);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("user namespace"), std::string::npos) << st.error_message();
  userns.mutable_linux()->mutable_security_context()->mutable_namespace_options()
      ->mutable_userns_options()->set_mode(v1::NODE);
  std::string host_users = runPodOk(d, userns);
  EXPECT_EQ(listPods(d).size(), 2u) << "failed runs leave nothing";
}

TEST(PodTest, FailureAfterCreateIsUndone) {
  // The sandbox image cannot be pulled: the pod's record, name, netns and folder go away.
  Berthd d("[cri]\nsandbox_image = \"127.0.0.1:1/nothing/pause:1\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::string id;
  grpc::Status st = runPod(d, podConfig("undo", v1::POD), &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("sandbox image"), std::string::npos) << st.error_message();
  EXPECT_TRUE(listPods(d).empty());
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/pods"));
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/netns"));
  // The name was released: a second try fails the same way, not as a duplicate.
  EXPECT_EQ(runPod(d, podConfig("undo", v1::POD), &id).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(PodTest, StopAndRemoveAreIdempotentAndPrefixesWork) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string id = runPodOk(d, podConfig("idem"));
  std::string prefix = id.substr(0, 12);
  EXPECT_EQ(podStatus(d, prefix).status().id(), id);
  EXPECT_TRUE(stopPod(d, prefix).ok());
  EXPECT_TRUE(stopPod(d, id).ok());
  EXPECT_TRUE(removePod(d, prefix).ok());
  EXPECT_TRUE(removePod(d, id).ok()) << "removing a removed pod succeeds";
  grpc::Status st = stopPod(d, id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find(id), std::string::npos) << st.error_message();
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id("feedface");
  v1::PodSandboxStatusResponse resp;
  auto ctx = Berthd::context();
  EXPECT_EQ(d.runtime().PodSandboxStatus(ctx.get(), req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(PodTest, ListFilters) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string a = runPodOk(d, podConfig("lista"));
  std::string b = runPodOk(d, podConfig("listb"));
  ASSERT_TRUE(stopPod(d, b).ok());
  v1::PodSandboxFilter f;
  f.mutable_state()->set_state(v1::SANDBOX_READY);
  auto ready = listPods(d, &f);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].id(), a);
  v1::PodSandboxFilter lf;
  (*lf.mutable_label_selector())["app"] = "listb";
  auto byLabel = listPods(d, &lf);
  ASSERT_EQ(byLabel.size(), 1u);
  EXPECT_EQ(byLabel[0].id(), b);
  v1::PodSandboxFilter idf;
  idf.set_id(a.substr(0, 10));
  ASSERT_EQ(listPods(d, &idf).size(), 1u);
  EXPECT_EQ(listPods(d).size(), 2u);
}

TEST(PodTest, PodsSurviveBerthdKill9AndExitsWhileDownAreReported) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string keep = runPodOk(d, podConfig("keep"));
  std::string die = runPodOk(d, podConfig("die"));
  int keep_pid = nlohmann::json::parse(podStatus(d, keep, true).info().at("info"))["pid"];
  int die_pid = nlohmann::json::parse(podStatus(d, die, true).info().at("info"))["pid"];
  EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  ASSERT_TRUE(alive(keep_pid));
  ASSERT_EQ(::kill(die_pid, SIGKILL), 0);  // exits while berthd is down
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(d.start()) << d.log();
  auto k = podStatus(d, keep, true);
  EXPECT_EQ(k.status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(nlohmann::json::parse(k.info().at("info"))["pid"], keep_pid);
  EXPECT_TRUE(alive(keep_pid));
  EXPECT_TRUE(waitState(d, die, v1::SANDBOX_NOTREADY));
  EXPECT_NE(d.log().find("exited with 137 while berthd was down"), std::string::npos) << d.log();
  // The restarted berthd still manages the survivor.
  ASSERT_TRUE(stopPod(d, keep).ok());
  EXPECT_FALSE(alive(keep_pid));
}

TEST(PodTest, FailedCleanupIsRetriedWithBackoff) {
  FlakyRuntime flaky;
  const std::string& marker = flaky.marker;
  const std::string& wrapper = flaky.wrapper;
  {
    Berthd d("[cri.runtimes.flaky]\nruntime_path = \"" + wrapper + "\"\n");
    ASSERT_TRUE(d.start()) << d.log();
    std::string id;
    ASSERT_TRUE(runPod(d, podConfig("flaky"), &id, "flaky").ok()) << d.log();
    int pid = nlohmann::json::parse(podStatus(d, id, true).info().at("info"))["pid"];
    std::ofstream(marker) << "x";
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_TRUE(waitState(d, id, v1::SANDBOX_NOTREADY));
    // The clean-up fails and is retried (1 s, then 2 s, ...).
    for (int i = 0; i < 200 && d.log().find("clean-up failed again") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(d.log().find("clean-up failed, retrying with back-off"), std::string::npos) << d.log();
    EXPECT_NE(d.log().find("clean-up failed again"), std::string::npos) << d.log();
    EXPECT_EQ(nlohmann::json::parse(podStatus(d, id, true).info().at("info"))["processStatus"], "stopped");
    std::filesystem::remove(marker);
    for (int i = 0; i < 400 && d.log().find("clean-up succeeded after") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(d.log().find("clean-up succeeded after"), std::string::npos) << d.log();
    EXPECT_EQ(nlohmann::json::parse(podStatus(d, id, true).info().at("info"))["processStatus"], "deleted");
  }
}

TEST(PodTest, CleanupPendingAtRestartIsFinished) {
  FlakyRuntime flaky;
  const std::string& marker = flaky.marker;
  const std::string& wrapper = flaky.wrapper;
  Berthd d("[cri.runtimes.flaky]\nruntime_path = \"" + wrapper + "\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::string id;
  ASSERT_TRUE(runPod(d, podConfig("pending"), &id, "flaky").ok()) << d.log();
  int pid = nlohmann::json::parse(podStatus(d, id, true).info().at("info"))["pid"];
  std::ofstream(marker) << "x";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(waitState(d, id, v1::SANDBOX_NOTREADY));
  EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);  // the pending retry dies with berthd
  std::filesystem::remove(marker);
  ASSERT_TRUE(d.start()) << d.log();
  auto info = nlohmann::json::parse(podStatus(d, id, true).info().at("info"));
  EXPECT_EQ(info["processStatus"], "deleted") << d.log();
  EXPECT_EQ(podStatus(d, id).status().state(), v1::SANDBOX_NOTREADY);
  EXPECT_FALSE(std::filesystem::exists(d.state() + "/runtime/flaky/" + id))
      << "the runtime's container state is deleted after the restart";
}

TEST(PodTest, BerthctlPodVerbs) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {berthctlPath(), "-r", d.endpoint()});
    return runProgram(args, 120);
  };
  std::string cfg = d.dir() + "/pod.json";
  std::ofstream(cfg) << R"({"metadata":{"name":"ctl","namespace":"default","uid":"u-ctl","attempt":1},
    "linux":{"security_context":{"namespace_options":{"network":2}}}})";
  RunResult run = ctl({"runp", cfg});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string id = run.out.substr(0, run.out.find('\n'));
  ASSERT_EQ(id.size(), 64u) << run.out;
  RunResult pods = ctl({"pods"});
  ASSERT_EQ(pods.exit_code, 0) << pods.err;
  EXPECT_NE(pods.out.find(id.substr(0, 13)), std::string::npos) << pods.out;
  EXPECT_NE(pods.out.find("Ready"), std::string::npos) << pods.out;
  RunResult quiet = ctl({"pods", "-q", "--state", "ready", "--label", "none=here"});
  EXPECT_EQ(quiet.out, "") << "label filter";
  RunResult inspect = ctl({"inspectp", id.substr(0, 8)});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["status"]["state"], "SANDBOX_READY");
  EXPECT_EQ(j["info"]["processStatus"], "running");
  RunResult stop = ctl({"stopp", id});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_NE(ctl({"pods"}).out.find("NotReady"), std::string::npos);
  RunResult rm = ctl({"rmp", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(ctl({"pods", "-q"}).out, "");
  RunResult bad = ctl({"stopp", "0000dead"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("StopPodSandbox failed: NotFound"), std::string::npos) << bad.err;
}

TEST(PodTest, SandboxImageFromRegistry) {
  nlohmann::json spec = {
      {"repo", "berth-test/pause"},
      {"tags", {std::to_string(::getpid())}},
      {"layers",
       {{{"entries", {{{"type", "file"}, {"path", "/pause"}, {"source", BERTH_PAUSE_PATH_STR}, {"mode", "0755"}}}}}}},
      {"config", {{"Entrypoint", {"/pause"}}}}};
  nlohmann::json pushed = pushImage(spec);
  std::string ref = pushed["ref"];
  Berthd d("[cri]\nsandbox_image = \"" + ref + "\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::string id = runPodOk(d, podConfig("image"));
  auto info = nlohmann::json::parse(podStatus(d, id, true).info().at("info"));
  EXPECT_EQ(info["image"], ref);
  EXPECT_EQ(info["snapshotter"], "overlayfs");
  EXPECT_EQ(info["snapshotKey"], "sandbox-" + id);
  EXPECT_EQ(info["processStatus"], "running");
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image(ref);
  v1::ImageStatusResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.image().ImageStatus(ctx.get(), req, &resp).ok());
  EXPECT_TRUE(resp.image().pinned());
}

}  // namespace
}  // namespace berth::testing
