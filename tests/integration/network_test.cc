// Pod networking with Debian's CNI plugins: each test daemon has its own bridge and
// 198.18.N.0/24 subnet without masquerading (berthd_fixture.h). Pod IPs, HTTP from the host and
// between pods, host ports, teardown releasing leases and rules, plugin failures, a config
// dropped in late, restarts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;

bool eventually(int ms, const std::function<bool()>& pred) {
  for (int i = 0; i < ms / 20; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A fake CNI plugin script in the daemon's own plugin dir.
void writePlugin(const Berthd& d, const std::string& name, const std::string& body) {
  std::string path = d.cniBinDir() + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n"
                      << "if [ \"$CNI_COMMAND\" = VERSION ]; then\n"
                         "  echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}'; exit 0\n"
                         "fi\n"
                      << body;
  ::chmod(path.c_str(), 0755);
}

// A chained plugin: `body` runs with the network config in $conf, then the previous result
// is passed on (an empty 1.0.0 result when there is none).
void writeChainedPlugin(const Berthd& d, const std::string& name, const std::string& body) {
  writePlugin(d, name,
              "conf=$(cat)\n" + body +
                  "echo \"$conf\" | python3 -c 'import json, sys; "
                  "print(json.dumps(json.load(sys.stdin).get(\"prevResult\", "
                  "{\"cniVersion\": \"1.0.0\"})))'\n");
}

// A chained plugin that records each DEL's container id in `calls` and then runs `del_tail`
// (which ends the DEL).
void writeDelRecorder(const Berthd& d, const std::string& name, const std::string& calls,
                      const std::string& del_tail) {
  writeChainedPlugin(d, name,
                     "if [ \"$CNI_COMMAND\" = DEL ]; then\n"
                     "  echo \"$CNI_CONTAINERID\" >> " +
                         calls + "\n" + del_tail + "fi\n");
}

struct Net {
  explicit Net(Berthd& daemon) : d(daemon) {}

  bool pull() {
    busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
    grpc::Status st = pullImage(d, busybox);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return st.ok();
  }

  v1::PodSandboxConfig podConfig(const std::string& name, v1::NamespaceMode mode = v1::POD) {
    v1::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("net");
    c.mutable_metadata()->set_uid("uid-" + name);
    c.set_hostname(name);
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(mode);
    return c;
  }

  grpc::Status runPod(const v1::PodSandboxConfig& c, std::string* id) {
    return testing::runPod(d, c, id);
  }

  std::string runPodOk(const v1::PodSandboxConfig& c) {
    std::string id;
    grpc::Status st = runPod(c, &id);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
    configs[id] = c;
    return id;
  }

  v1::PodSandboxStatusResponse status(const std::string& id, bool verbose = false) {
    return podStatus(d, id, verbose);
  }

  grpc::Status stopPod(const std::string& id) { return testing::stopPod(d, id); }

  grpc::Status removePod(const std::string& id) { return testing::removePod(d, id); }

  // Runs a container in the pod; returns its id.
  std::string runContainer(const std::string& pod, const std::string& name,
                           const std::vector<std::string>& cmd) {
    v1::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image(busybox);
    for (const auto& a : cmd) c.add_command(a);
    std::string id;
    grpc::Status st = createContainer(d, pod, c, configs[pod], &id);
    EXPECT_TRUE(st.ok()) << st.error_message();
    st = startContainer(d, id);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return id;
  }

  // A container serving `text` over HTTP on :8080.
  std::string runHttpd(const std::string& pod, const std::string& text) {
    return runContainer(pod, "web",
                        {"sh", "-c", "mkdir -p /www && echo " + text +
                                         " > /www/index.html && exec httpd -f -p 8080 -h /www"});
  }

  v1::ExecSyncResponse exec(const std::string& id, const std::vector<std::string>& cmd) {
    v1::ExecSyncResponse resp;
    grpc::Status st = execSync(d, id, cmd, &resp, 20);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  std::vector<std::string> leases() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(d.cniLeaseDir(), ec)) {
      std::string name = e.path().filename().string();
      if (name.rfind("198.", 0) == 0) out.push_back(name);
    }
    return out;
  }

  // Interfaces attached to the daemon's bridge (one veth per pod).
  size_t bridgePorts() {
    std::error_code ec;
    size_t n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator("/sys/class/net/" + d.cniBridge() + "/brif", ec)) {
      (void)e;
      ++n;
    }
    return n;
  }

  Berthd& d;
  std::string busybox;
  std::map<std::string, v1::PodSandboxConfig> configs;
};

std::string curl(const std::string& url) {
  RunResult r = runProgram({"curl", "-s", "--max-time", "5", url}, 15);
  return r.exit_code == 0 ? r.out : "curl failed: " + r.err;
}

bool inSubnet(const std::string& ip, const std::string& subnet) {
  return ip.rfind(subnet.substr(0, subnet.rfind('.') + 1), 0) == 0;
}

TEST(NetworkTest, PodGetsAnIpAndServesHttpToTheHost) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  ASSERT_TRUE(n.pull());
  std::string pod = n.runPodOk(n.podConfig("web"));
  auto s = n.status(pod, true);
  std::string ip = s.status().network().ip();
  EXPECT_TRUE(inSubnet(ip, d.cniSubnet())) << ip << " not in " << d.cniSubnet();
  auto info = nlohmann::json::parse(s.info().at("info"));
  ASSERT_TRUE(info["cniResult"].is_object()) << info.dump();
  EXPECT_NE(info["cniResult"]["ips"][0]["address"].get<std::string>().find(ip), std::string::npos);
  EXPECT_EQ(n.leases().size(), 1u);
  EXPECT_EQ(n.bridgePorts(), 1u);

  n.runHttpd(pod, "hello-from-pod");
  EXPECT_TRUE(eventually(5000, [&] { return curl("http://" + ip + ":8080/") == "hello-from-pod\n"; }))
      << curl("http://" + ip + ":8080/");

  // The result survives a restart.
  ASSERT_EQ(d.stop(SIGTERM), 0);
  ASSERT_TRUE(d.start()) << d.log();
  s = n.status(pod, true);
  EXPECT_EQ(s.status().network().ip(), ip);
  EXPECT_EQ(nlohmann::json::parse(s.info().at("info"))["cniResult"], info["cniResult"]);

  // Stop tears the network down: lease and veth go, the netns is closed.
  ASSERT_TRUE(n.stopPod(pod).ok()) << d.log();
  EXPECT_TRUE(n.leases().empty());
  EXPECT_EQ(n.bridgePorts(), 0u);
  s = n.status(pod, true);
  info = nlohmann::json::parse(s.info().at("info"));
  EXPECT_TRUE(info["netNamespaceClosed"].get<bool>());
  EXPECT_TRUE(s.status().has_network()) << "always set, as containerd does";
  EXPECT_EQ(s.status().network().ip(), "") << "no IP once the namespace is closed";
  ASSERT_TRUE(n.removePod(pod).ok());
}

TEST(NetworkTest, TwoPodsReachEachOtherAndHostNetworkKeepsTheHostsInterfaces) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  ASSERT_TRUE(n.pull());
  std::string a = n.runPodOk(n.podConfig("a"));
  std::string b = n.runPodOk(n.podConfig("b"));
  std::string ip_a = n.status(a).status().network().ip();
  std::string ip_b = n.status(b).status().network().ip();
  EXPECT_NE(ip_a, ip_b);
  n.runHttpd(a, "from-a");
  std::string client = n.runContainer(b, "client", {"sleep", "3600"});
  EXPECT_TRUE(eventually(5000, [&] {
    return n.exec(client, {"wget", "-q", "-O", "-", "http://" + ip_a + ":8080/"}).stdout() == "from-a\n";
  }));
  // Inside pod b, eth0 has b's address.
  EXPECT_NE(n.exec(client, {"ip", "-4", "addr", "show", "eth0"}).stdout().find(ip_b + "/"),
            std::string::npos);

  // A host-network pod sees the host's interfaces (the test bridge among them) and no CNI.
  std::string host = n.runPodOk(n.podConfig("host", v1::NODE));
  EXPECT_TRUE(n.status(host).status().has_network());
  EXPECT_TRUE(n.status(host).status().network().ip().empty());
  std::string c = n.runContainer(host, "c", {"sleep", "3600"});
  std::string links = n.exec(c, {"ip", "link"}).stdout();
  EXPECT_NE(links.find(d.cniBridge()), std::string::npos) << links;
  EXPECT_EQ(n.leases().size(), 2u);
}

TEST(NetworkTest, HostPortOnLoopbackReachesTheContainerAndRulesGoWithThePod) {
  Berthd d;
  d.writeCniConfig(R"({"type": "portmap", "capabilities": {"portMappings": true}})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  ASSERT_TRUE(n.pull());
  auto rules = [&] { return runProgram({"iptables", "-t", "nat", "-S"}).out; };
  const bool had_portmap_chains = rules().find("CNI-HOSTPORT-DNAT") != std::string::npos;
  int host_port = 30000 + (::getpid() % 20000);
  auto cfg = n.podConfig("ports");
  auto* pm = cfg.add_port_mappings();
  pm->set_container_port(8080);
  pm->set_host_port(host_port);
  pm->set_host_ip("127.0.0.1");
  std::string pod = n.runPodOk(cfg);
  n.runHttpd(pod, "via-host-port");
  std::string url = "http://127.0.0.1:" + std::to_string(host_port) + "/";
  EXPECT_TRUE(eventually(5000, [&] { return curl(url) == "via-host-port\n"; })) << curl(url);
  EXPECT_NE(rules().find(std::to_string(host_port)), std::string::npos);
  ASSERT_TRUE(n.removePod(pod).ok()) << d.log();
  EXPECT_EQ(rules().find(std::to_string(host_port)), std::string::npos) << rules();
  EXPECT_EQ(rules().find(pod), std::string::npos);
  EXPECT_TRUE(n.leases().empty());
  if (!had_portmap_chains) {
    // portmap keeps its shared chains for the next pod; a test machine gets them removed.
    for (const std::vector<std::string>& rule :
         {std::vector<std::string>{"PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j",
                                   "CNI-HOSTPORT-DNAT"},
          {"OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
          {"POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j",
           "CNI-HOSTPORT-MASQ"}}) {
      std::vector<std::string> cmd = {"iptables", "-t", "nat", "-D"};
      cmd.insert(cmd.end(), rule.begin(), rule.end());
      runProgram(cmd);
    }
    for (const char* chain : {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}) {
      runProgram({"iptables", "-t", "nat", "-F", chain});
      runProgram({"iptables", "-t", "nat", "-X", chain});
    }
    EXPECT_EQ(rules().find("CNI-"), std::string::npos) << rules();
  }
}

TEST(NetworkTest, FailingPluginLeavesNothingAndIsNamed) {
  Berthd d;
  writePlugin(d, "berth-fail",
              "cat >/dev/null\n"
              "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
              "  echo '{\"cniVersion\":\"1.0.0\",\"code\":101,\"msg\":\"injected failure\","
              "\"details\":\"on purpose\"}'\n  exit 1\nfi\n"
              "echo '{\"cniVersion\":\"1.0.0\"}'\n");
  d.writeCniConfig(R"({"type": "berth-fail"})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::string id;
  grpc::Status st = n.runPod(n.podConfig("fails"), &id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("berth-fail"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("injected failure"), std::string::npos) << st.error_message();
  // No pod, netns, lease or veth is left.
  v1::ListPodSandboxResponse list;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().ListPodSandbox(ctx.get(), {}, &list).ok());
  EXPECT_EQ(list.items_size(), 0);
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/netns", ec));
  EXPECT_TRUE(n.leases().empty());
  EXPECT_EQ(n.bridgePorts(), 0u);
}

// Issue 15, point 3: CNI ADD runs while the pause is being started, not before it. The plugin
// waits (up to 10 s) for a process to join the pod's namespace and records its pid; run one
// after the other, the ADD would time out and RunPodSandbox fail. A plugin failing after the
// pause started leaves no pause, shim, namespace or pod behind.
TEST(NetworkTest, PodNetworkIsSetUpWhileThePauseStarts) {
  Berthd d;
  std::string seen = d.dir() + "/seen";
  writeChainedPlugin(
      d, "berth-waits",
      "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
      "  want=\"net:[$(stat -L -c %i \"$CNI_NETNS\")]\"\n"
      "  i=0; pid=\n"
      "  while [ -z \"$pid\" ] && [ $i -lt 500 ]; do\n"
      "    for p in /proc/[0-9]*; do\n"
      "      [ \"$(readlink $p/ns/net 2>/dev/null)\" = \"$want\" ] && pid=${p#/proc/} && break\n"
      "    done\n"
      "    [ -z \"$pid\" ] && sleep 0.02; i=$((i+1))\n"
      "  done\n"
      "  [ -n \"$pid\" ] || { echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"nobody "
      "joined\"}'; exit 1; }\n"
      "  echo \"$CNI_CONTAINERID $pid\" >> " +
          seen +
          "\n"
          "  case \"$CNI_ARGS\" in *K8S_POD_NAME=fails*)\n"
          "    echo '{\"cniVersion\":\"1.0.0\",\"code\":101,\"msg\":\"injected failure\"}'; exit "
          "1;;\n"
          "  esac\n"
          "fi\n");
  d.writeCniConfig(R"({"type": "berth-waits"})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::string id;
  grpc::Status st = n.runPod(n.podConfig("waits"), &id);
  ASSERT_TRUE(st.ok()) << st.error_message() << d.log();
  std::istringstream first(slurp(seen));
  std::string seen_id;
  int pid = 0;
  first >> seen_id >> pid;
  EXPECT_EQ(seen_id, id);
  EXPECT_GT(pid, 0) << slurp(seen);

  std::string failed_id;
  st = n.runPod(n.podConfig("fails"), &failed_id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("injected failure"), std::string::npos) << st.error_message();
  std::istringstream both(slurp(seen));
  std::string line, last_id;
  int last_pid = 0;
  while (std::getline(both, line)) std::istringstream(line) >> last_id >> last_pid;
  ASSERT_NE(last_id, id) << "the failing pod's ADD saw its pause";
  ASSERT_GT(last_pid, 0);
  // The failed pod's pause, its shim, namespace and record are gone; the first pod stays.
  EXPECT_TRUE(eventually(5000, [&] { return ::kill(last_pid, 0) != 0; }))
      << "pause " << last_pid << " of the failed pod still runs";
  EXPECT_FALSE(std::filesystem::exists(d.state() + "/netns/" + last_id));
  EXPECT_FALSE(std::filesystem::exists(d.state() + "/pods/" + last_id)) << d.log();
  v1::ListPodSandboxResponse list;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().ListPodSandbox(ctx.get(), {}, &list).ok());
  ASSERT_EQ(list.items_size(), 1);
  EXPECT_EQ(list.items(0).id(), id);
  EXPECT_EQ(::kill(pid, 0), 0) << "the first pod's pause is gone";
}

// Issue 15, point 4: StopPodSandbox runs CNI DEL while it stops the pod's processes, not
// after. The pod's runtime is runc behind a wrapper whose `kill` waits while a file exists,
// so stopping the pause cannot end until the test removes it; the DEL must run meanwhile.
// The stop then completes, and the network is torn down once.
TEST(NetworkTest, PodNetworkIsTornDownWhileThePauseStops) {
  char tmpl[] = "/tmp/berth-holdkill-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string rt_dir = tmpl, hold = rt_dir + "/hold", wrapper = rt_dir + "/runc";
  std::ofstream(wrapper) << "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = kill ]; then\n"
                            "    i=0; while [ -e "
                         << hold
                         << " ] && [ $i -lt 500 ]; do sleep 0.02; "
                            "i=$((i+1)); done\n  fi\ndone\nexec runc \"$@\"\n";
  ::chmod(wrapper.c_str(), 0755);
  Berthd d(
      "[cri]\ndefault_runtime_handler = \"holdkill\"\n[cri.runtimes.holdkill]\n"
      "runtime_path = \"" +
      wrapper + "\"\n");
  std::string dels = d.dir() + "/dels";
  writeDelRecorder(d, "berth-deltrack", dels, "");
  d.writeCniConfig(R"({"type": "berth-deltrack"})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::string pod = n.runPodOk(n.podConfig("held"));
  ASSERT_FALSE(pod.empty());
  std::ofstream(hold) << "x";
  std::atomic<bool> stopped{false};
  grpc::Status st;
  std::thread stop([&] {
    st = n.stopPod(pod);
    stopped = true;
  });
  bool del_while_held = eventually(5000, [&] { return slurp(dels) == pod + "\n"; });
  bool stopped_while_held = stopped;
  std::filesystem::remove(hold);
  stop.join();
  EXPECT_TRUE(del_while_held) << "CNI DEL waited for the pause to stop";
  EXPECT_FALSE(stopped_while_held) << "the stop ended before its pause did";
  ASSERT_TRUE(st.ok()) << st.error_message() << d.log();
  EXPECT_FALSE(std::filesystem::exists(d.state() + "/netns/" + pod));
  ASSERT_TRUE(n.removePod(pod).ok());
  EXPECT_EQ(slurp(dels), pod + "\n") << "CNI DEL ran more than once";
  EXPECT_TRUE(n.leases().empty());
  std::filesystem::remove_all(rt_dir);
}

// Issue 13, point 3: a relist while RunPodSandbox is still making a pod (here: a slow CNI
// plugin) must not see that pod NOTREADY, which kubelet would take for a pod that died.
TEST(NetworkTest, PodBeingMadeIsNotListedUntilRunPodSandboxReturns) {
  Berthd d;
  writeChainedPlugin(d, "berth-slow", "if [ \"$CNI_COMMAND\" = ADD ]; then sleep 3; fi\n");
  d.writeCniConfig(R"({"type": "berth-slow"})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::atomic<bool> done{false};
  grpc::Status st;
  std::string id;
  std::thread run([&] {
    st = n.runPod(n.podConfig("slow"), &id);
    done = true;
  });
  int lists = 0, not_ready = 0;
  while (!done) {
    v1::ListPodSandboxResponse list;
    auto ctx = Berthd::context();
    if (d.runtime().ListPodSandbox(ctx.get(), {}, &list).ok()) ++lists;
    for (const auto& p : list.items()) not_ready += p.state() != v1::SANDBOX_READY;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  run.join();
  ASSERT_TRUE(st.ok()) << st.error_message() << d.log();
  EXPECT_GT(lists, 20) << "the relists ran while the pod was being made";
  EXPECT_EQ(not_ready, 0) << "a pod being made was listed NOTREADY";
  v1::ListPodSandboxResponse list;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().ListPodSandbox(ctx.get(), {}, &list).ok());
  ASSERT_EQ(list.items_size(), 1);
  EXPECT_EQ(list.items(0).id(), id);
  EXPECT_EQ(list.items(0).state(), v1::SANDBOX_READY);
}

// Stop and Remove of one pod at once (kubelet and an operator, or two kubelet workers): the
// network is torn down once, every call succeeds (issue 14, point 5).
TEST(NetworkTest, ConcurrentStopsAndRemoveRunCniDelOnce) {
  Berthd d;
  std::string calls = d.dir() + "/del-calls";
  writeDelRecorder(d, "berth-slowdel", calls, "  sleep 0.3\n  exit 0\n");
  d.writeCniConfig(R"({"type": "berth-slowdel"})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::string pod = n.runPodOk(n.podConfig("twice"));
  ASSERT_FALSE(pod.empty());
  std::vector<grpc::Status> results(3);
  std::vector<std::thread> callers;
  callers.emplace_back([&] { results[0] = n.stopPod(pod); });
  callers.emplace_back([&] { results[1] = n.stopPod(pod); });
  callers.emplace_back([&] { results[2] = n.removePod(pod); });
  for (auto& t : callers) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  EXPECT_EQ(slurp(calls), pod + "\n") << "CNI DEL ran more than once";
  EXPECT_TRUE(n.leases().empty());
  EXPECT_EQ(n.bridgePorts(), 0u);
}

TEST(NetworkTest, FailedDeleteIsRetriedAndAGoneNetnsStillGetsDel) {
  Berthd d;
  std::string marker = d.dir() + "/fail-del";
  std::string calls = d.dir() + "/del-calls";
  writeDelRecorder(d, "berth-flaky", calls,
                   "  if [ -e " + marker + " ]; then\n"
                   "    echo '{\"cniVersion\":\"1.0.0\",\"code\":102,\"msg\":\"injected del failure\"}'; exit 1\n"
                   "  fi\n  exit 0\n");
  d.writeCniConfig(R"({"type": "berth-flaky"})");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::string pod = n.runPodOk(n.podConfig("flaky"));
  ASSERT_FALSE(pod.empty());
  std::ofstream(marker) << "x";
  grpc::Status st = n.stopPod(pod);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("injected del failure"), std::string::npos) << st.error_message();
  // The namespace disappears behind berth's back; the next Stop still sends DEL.
  std::string netns = d.state() + "/netns/" + pod;
  ASSERT_EQ(::umount2(netns.c_str(), MNT_DETACH), 0);
  ::unlink(netns.c_str());
  std::filesystem::remove(marker);
  st = n.stopPod(pod);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(slurp(calls), pod + "\n" + pod + "\n");
  EXPECT_TRUE(n.leases().empty()) << "the IP is released";
  // Done once: Remove sends no further DEL.
  ASSERT_TRUE(n.removePod(pod).ok());
  EXPECT_EQ(slurp(calls), pod + "\n" + pod + "\n");
}

TEST(NetworkTest, ConfigDroppedInLaterIsUsedWithoutRestart) {
  Berthd d;
  std::filesystem::remove(d.cniConfDir() + "/10-berth-it.conflist");
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  auto network_ready = [&]() -> v1::RuntimeCondition {
    v1::StatusResponse resp;
    auto ctx = Berthd::context();
    EXPECT_TRUE(d.runtime().Status(ctx.get(), {}, &resp).ok());
    for (const auto& c : resp.status().conditions()) {
      if (c.type() == "NetworkReady") return c;
    }
    return {};
  };
  auto c = network_ready();
  EXPECT_FALSE(c.status());
  EXPECT_EQ(c.reason(), "NetworkPluginNotReady");
  std::string id;
  grpc::Status st = n.runPod(n.podConfig("early"), &id);
  EXPECT_FALSE(st.ok());
  // Host-network pods do not need CNI.
  EXPECT_FALSE(n.runPodOk(n.podConfig("hostnet", v1::NODE)).empty());

  d.writeCniConfig();
  EXPECT_TRUE(eventually(5000, [&] { return network_ready().status(); })) << d.log();
  std::string pod = n.runPodOk(n.podConfig("late"));
  EXPECT_TRUE(inSubnet(n.status(pod).status().network().ip(), d.cniSubnet()));
}

TEST(NetworkTest, FiftyPodsLeaveNothingBehind) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  Net n(d);
  std::vector<std::string> pods;
  for (int i = 0; i < 50; ++i) pods.push_back(n.runPodOk(n.podConfig("p" + std::to_string(i))));
  EXPECT_EQ(n.leases().size(), 50u);
  EXPECT_EQ(n.bridgePorts(), 50u);
  for (const auto& p : pods) ASSERT_TRUE(n.removePod(p).ok()) << d.log();
  EXPECT_TRUE(n.leases().empty());
  EXPECT_EQ(n.bridgePorts(), 0u);
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(d.state() + "/netns", ec));
}

}  // namespace
}  // namespace berth::testing
