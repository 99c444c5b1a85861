// Tests for the CNI client with fake plugins: /bin/sh scripts in a temp dir that record their
// command, stdin and environment and print a canned result or error.
#include "network/cni.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/test_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "network/cni_internal.h"

namespace berth::network {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

json result(const std::string& address) {
  return json{{"cniVersion", "1.0.0"},
              {"interfaces", json::array({json{{"name", "eth0"}}})},
              {"ips", json::array({json{{"address", address}, {"interface", 0}}})}};
}

std::string printResult(const json& j) {
  return absl::StrCat("cat <<'EOF'\n", j.dump(), "\nEOF\n");
}

std::string printError(int code, const std::string& msg, const std::string& details) {
  json e = {{"cniVersion", "1.0.0"}, {"code", code}, {"msg", msg}};
  if (!details.empty()) e["details"] = details;
  return absl::StrCat("cat <<'EOF'\n", e.dump(), "\nEOF\nexit 1\n");
}

bool processGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren != std::string::npos && line.size() > paren + 2 && line[paren + 2] == 'Z';
}

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& d : {conf_dir_, bin_dir_, bin_dir2_, out_dir_}) {
      ASSERT_TRUE(makeDirs(d, 0755).ok());
    }
  }

  // A fake plugin `type` in `dir`: answers VERSION (counted in <out>/<type>.versions), records
  // any other call, then runs `body` (exit 0 by default).
  void plugin(const std::string& type, const std::string& body, const std::string& dir = "",
              const std::string& supported = R"(["0.3.0","0.3.1","0.4.0","1.0.0"])") {
    std::string path = (dir.empty() ? bin_dir_ : dir) + "/" + type;
    std::string script = absl::StrCat(
        "#!/bin/sh\nout=", out_dir_, "\nt=$(basename \"$0\")\n",
        "if [ \"$CNI_COMMAND\" = VERSION ]; then\n  echo x >> \"$out/$t.versions\"\n",
        "  echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":", supported, "}'\n  exit 0\nfi\n",
        "echo \"$t $CNI_COMMAND\" >> \"$out/calls\"\n", "cat > \"$out/$t.$CNI_COMMAND.stdin\"\n",
        "tr '\\0' '\\n' < /proc/$$/environ > \"$out/$t.$CNI_COMMAND.env\"\n", body);
    ASSERT_TRUE(writeFileAtomic(path, script, 0755).ok());
  }

  void writeConf(const std::string& name, const std::string& text) {
    ASSERT_TRUE(writeFileAtomic(conf_dir_ + "/" + name, text, 0644).ok());
  }

  void writeList(const std::string& name, const std::string& version,
                 const std::vector<json>& plugins, const std::string& net = "testnet") {
    json list = {{"cniVersion", version}, {"name", net}, {"plugins", plugins}};
    writeConf(name, list.dump());
  }

  CniOptions options() const {
    CniOptions o;
    o.conf_dir = conf_dir_;
    o.bin_dirs = {bin_dir_, bin_dir2_};
    o.default_network = false;
    o.reload_interval = absl::Milliseconds(50);
    o.plugin_timeout = absl::Seconds(20);
    return o;
  }

  CniAttachment attachment(const std::string& id = "pod1") const {
    CniAttachment a;
    a.container_id = id;
    a.netns_path = "/run/berth/netns/" + id;
    a.pod_namespace = "default";
    a.pod_name = "web";
    a.pod_uid = "uid-1";
    return a;
  }

  std::vector<std::string> calls() const {
    std::string text = readFile(out_dir_ + "/calls").value_or("");
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

  json stdinOf(const std::string& type, const std::string& command) const {
    std::string text =
        readFile(absl::StrCat(out_dir_, "/", type, ".", command, ".stdin")).value_or("");
    return json::parse(text, nullptr, false);
  }

  std::vector<std::string> envOf(const std::string& type, const std::string& command) const {
    std::string text =
        readFile(absl::StrCat(out_dir_, "/", type, ".", command, ".env")).value_or("");
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

  testing::TestDir tmp_;
  std::string conf_dir_ = tmp_ / "net.d";
  std::string bin_dir_ = tmp_ / "bin";
  std::string bin_dir2_ = tmp_ / "bin2";
  std::string out_dir_ = tmp_ / "out";
};

TEST_F(CniTest, FirstValidFileByNameWinsAndSingleConfIsWrapped) {
  plugin("bridge", "");
  writeList("20-list.conflist", "1.0.0", {json{{"type", "bridge"}}}, "second");
  writeConf("10-single.conf",
            R"({"cniVersion":"0.4.0","name":"first","type":"bridge","bridge":"b0"})");
  CniManager m(options());
  auto net = m.network();
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->name, "first");
  EXPECT_EQ(net->cni_version, "0.4.0");
  EXPECT_EQ(net->source, conf_dir_ + "/10-single.conf");
  EXPECT_EQ(net->list, json::parse(R"({"cniVersion":"0.4.0","name":"first",
                                       "plugins":[{"type":"bridge","bridge":"b0"}]})"));
  EXPECT_TRUE(m.readiness().ready);
}

TEST_F(CniTest, InvalidFilesAreSkipped) {
  plugin("good", "");
  writeConf("01-notjson.conflist", "{ not json");
  writeConf("02-noname.conflist", R"({"cniVersion":"1.0.0","plugins":[{"type":"good"}]})");
  writeConf("03-noplugins.conflist", R"({"cniVersion":"1.0.0","name":"n","plugins":[]})");
  writeConf("04-notype.conf", R"({"cniVersion":"1.0.0","name":"n"})");
  writeConf("05-oldversion.conflist",
            R"({"cniVersion":"0.2.0","name":"n","plugins":[{"type":"good"}]})");
  writeConf("06-plugin-without-type.conflist",
            R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"good"},{"mtu":1}]})");
  writeConf("07-badname.conflist",
            R"({"cniVersion":"1.0.0","name":"a b","plugins":[{"type":"good"}]})");
  writeConf("08-pathtype.conflist",
            R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../good"}]})");
  writeConf("09-array.json", "[1,2]");
  writeConf("10-valid-but-wrong-extension.txt",
            R"({"cniVersion":"1.0.0","name":"txt","plugins":[{"type":"good"}]})");
  ASSERT_EQ(::mkdir((conf_dir_ + "/11-dir.conflist").c_str(), 0755), 0);
  writeConf("12-good.json", R"({"cniVersion":"1.0.0","name":"good","plugins":[{"type":"good"}]})");
  CniManager m(options());
  ASSERT_NE(m.network(), nullptr);
  EXPECT_EQ(m.network()->name, "good");
  EXPECT_EQ(m.network()->source, conf_dir_ + "/12-good.json");
}

TEST_F(CniTest, NoConfigMeansNotReady) {
  writeConf("01-bad.conflist", "{");
  CniManager m(options());
  EXPECT_EQ(m.network(), nullptr);
  CniReadiness r = m.readiness();
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.reason, "NetworkPluginNotReady");
  EXPECT_THAT(r.message, HasSubstr("no network config found in " + conf_dir_));
  EXPECT_THAT(r.message, HasSubstr("01-bad.conflist"));

  absl::StatusOr<json> added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(added.status().message(), HasSubstr("no network config found"));
  EXPECT_EQ(m.del(attachment(), nullptr).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.check(attachment(), result("198.18.0.2/24")).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CniTest, DefaultNetworkWhenDirIsEmpty) {
  CniOptions o = options();
  o.default_network = true;
  o.default_bridge = "br-test";
  o.default_subnet = "198.18.7.0/24";
  {
    CniManager m(o);
    auto net = m.network();
    ASSERT_NE(net, nullptr);
    EXPECT_EQ(net->name, "berth");
    EXPECT_EQ(net->cni_version, "1.0.0");
    EXPECT_EQ(net->source, "");
    EXPECT_EQ(net->list, CniManager::defaultConfList("br-test", {"198.18.7.0/24"}));
    CniReadiness r = m.readiness();
    EXPECT_FALSE(r.ready);
    EXPECT_EQ(r.reason, "NetworkPluginNotReady");
    EXPECT_THAT(r.message, HasSubstr(absl::StrCat("plugins \"bridge\", \"host-local\", \"portmap\" "
                                                  "not found in ",
                                                  bin_dir_, ":", bin_dir2_)));
  }
  plugin("bridge", "");
  plugin("portmap", "");
  plugin("host-local", "", bin_dir2_);
  CniManager m(o);
  EXPECT_TRUE(m.readiness().ready);
  EXPECT_EQ(m.readiness().reason, "");
}

TEST_F(CniTest, DefaultConfList) {
  json expected = json::parse(R"({
    "cniVersion": "1.0.0", "name": "berth",
    "plugins": [
      {"type": "bridge", "bridge": "berth0", "isGateway": true, "ipMasq": true,
       "hairpinMode": true,
       "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]],
                "routes": [{"dst": "0.0.0.0/0"}]}},
      {"type": "portmap", "capabilities": {"portMappings": true}}
    ]})");
  EXPECT_EQ(CniManager::defaultConfList("berth0", {"10.88.0.0/16"}), expected);
  // Dual stack: a range per subnet, a default route per family.
  json dual = CniManager::defaultConfList("berth0", {"10.244.1.0/24", "fd00:10:244:1::/64"});
  EXPECT_EQ(dual["plugins"][0]["ipam"]["ranges"],
            json::parse(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])"));
  EXPECT_EQ(dual["plugins"][0]["ipam"]["routes"],
            json::parse(R"([{"dst":"0.0.0.0/0"},{"dst":"::/0"}])"));
}

TEST_F(CniTest, PodCidrsFromKubeletReplaceTheDefaultSubnetAndAreKept) {
  CniOptions o = options();
  o.default_network = true;
  o.default_subnet = "198.18.7.0/24";
  o.pod_cidr_file = out_dir_ + "/pod-cidrs";
  {
    CniManager m(o);
    auto bad = m.setPodCidrs({"10.244.1.0/24", "10.244.1.0"});
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"10.244.1.0\" is not a CIDR"));
    EXPECT_FALSE(m.setPodCidrs({"10.244.1.0/33"}).ok());
    EXPECT_FALSE(m.setPodCidrs({"fd00::/129"}).ok());
    auto in_use = m.setPodCidrs({"10.244.1.0/24", "fd00:10:244:1::/64"});
    ASSERT_TRUE(in_use.ok()) << in_use.status();
    EXPECT_TRUE(*in_use);  // the built-in network is the one in use
    EXPECT_EQ(m.network()->list,
              CniManager::defaultConfList("berth0", {"10.244.1.0/24", "fd00:10:244:1::/64"}));
  }
  // A restart of berthd alone: kubelet does not send them again.
  {
    CniManager m(o);
    EXPECT_EQ(m.network()->list,
              CniManager::defaultConfList("berth0", {"10.244.1.0/24", "fd00:10:244:1::/64"}));
    ASSERT_TRUE(m.setPodCidrs({}).ok());  // back to the configured subnet
    EXPECT_EQ(m.network()->list, CniManager::defaultConfList("berth0", {"198.18.7.0/24"}));
  }
  // A config of the administrator's wins; the CIDRs wait.
  writeList("10.conflist", "1.0.0", {json{{"type", "bridge"}}});
  CniManager m(o);
  auto in_use = m.setPodCidrs({"10.244.2.0/24"});
  ASSERT_TRUE(in_use.ok());
  EXPECT_FALSE(*in_use);
  EXPECT_NE(m.network()->source, "");
}

TEST_F(CniTest, PluginWithoutTheVersionIsNotReadyAndVersionIsAskedOnce) {
  plugin("old", "", "", R"(["0.3.0","0.3.1"])");
  plugin("new", "");
  writeList("10.conflist", "1.0.0", {json{{"type", "new"}}, json{{"type", "old"}}});
  CniManager m(options());
  CniReadiness r = m.readiness();
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.reason, kNetworkPluginNotReady);
  EXPECT_NE(r.message.find("plugin \"old\" does not support CNI version 1.0.0"), std::string::npos)
      << r.message;
  // Later reloads reuse the answers while the binaries are unchanged.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(readFile(out_dir_ + "/new.versions").value_or(""), "x\n");
  EXPECT_EQ(readFile(out_dir_ + "/old.versions").value_or(""), "x\n");
  // A newer binary is asked again.
  plugin("old", "");
  for (int i = 0; i < 100 && !m.readiness().ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(m.readiness().ready) << m.readiness().message;
}

TEST_F(CniTest, MissingPluginMeansNotReady) {
  plugin("bridge", "");
  writeList("10.conflist", "1.0.0",
            {json{{"type", "bridge"}}, json{{"type", "tuning"}, {"ipam", {{"type", "nope"}}}}});
  CniManager m(options());
  ASSERT_NE(m.network(), nullptr);
  CniReadiness r = m.readiness();
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.reason, "NetworkPluginNotReady");
  EXPECT_THAT(r.message, HasSubstr(absl::StrCat("plugins \"tuning\", \"nope\" not found in ",
                                                bin_dir_, ":", bin_dir2_)));
  absl::StatusOr<json> added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(added.status().message(), HasSubstr("\"tuning\""));
  EXPECT_TRUE(calls().empty());
}

TEST_F(CniTest, AddChainsResultsAndInjectsConfig) {
  json r1 = result("198.18.0.2/24");
  json r2 = result("198.18.0.3/24");
  plugin("first", printResult(r1));
  plugin("second", printResult(r2));
  writeList("10.conflist", "1.0.0",
            {json{{"type", "first"}, {"mtu", 1400}, {"capabilities", {{"portMappings", true}}}},
             json{{"type", "second"}, {"runtimeConfig", {{"old", 1}}}}},
            "chain");
  CniManager m(options());
  CniAttachment a = attachment();
  a.port_mappings = {{"TCP", 80, 8080, ""}};
  absl::StatusOr<json> added = m.add(a);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, r2);
  EXPECT_THAT(calls(), ElementsAre("first ADD", "second ADD"));

  EXPECT_EQ(stdinOf("first", "ADD"), json::parse(R"({
      "type": "first", "mtu": 1400, "capabilities": {"portMappings": true},
      "cniVersion": "1.0.0", "name": "chain",
      "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80,
                                          "protocol": "tcp"}]}})"));
  // The second plugin declares no capability: its own runtimeConfig is left as it is.
  json second = {{"type", "second"},
                 {"runtimeConfig", {{"old", 1}}},
                 {"cniVersion", "1.0.0"},
                 {"name", "chain"},
                 {"prevResult", r1}};
  EXPECT_EQ(stdinOf("second", "ADD"), second);

  EXPECT_THAT(
      envOf("first", "ADD"),
      UnorderedElementsAre("CNI_COMMAND=ADD", "CNI_CONTAINERID=pod1",
                           "CNI_NETNS=/run/berth/netns/pod1", "CNI_IFNAME=eth0",
                           "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
                           "K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=uid-1",
                           absl::StrCat("CNI_PATH=", bin_dir_, ":", bin_dir2_),
                           "PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
}

TEST_F(CniTest, PluginFoundInFirstBinDirThatHasIt) {
  plugin("dup", printResult(result("198.18.0.2/24")), bin_dir2_);
  writeList("10.conflist", "1.0.0", {json{{"type", "dup"}}});
  CniManager m(options());
  EXPECT_THAT(resultIps(m.add(attachment()).value_or(json())), ElementsAre("198.18.0.2"));
  plugin("dup", printResult(result("198.18.0.9/24")), bin_dir_);
  EXPECT_THAT(resultIps(m.add(attachment("pod2")).value_or(json())), ElementsAre("198.18.0.9"));
}

TEST_F(CniTest, CapabilitiesGoOnlyToPluginsThatDeclareThem) {
  plugin("all", printResult(result("198.18.0.2/24")));
  plugin("none", printResult(result("198.18.0.2/24")));
  writeList("10.conflist", "1.0.0",
            {json{{"type", "all"},
                  {"capabilities",
                   {{"portMappings", true},
                    {"dns", true},
                    {"bandwidth", true},
                    {"io.kubernetes.cri.pod-annotations", true},
                    {"ipRanges", true}}}},
             json{{"type", "none"}, {"capabilities", {{"portMappings", false}}}}});
  CniManager m(options());
  CniAttachment a = attachment();
  a.port_mappings = {{"UDP", 53, 5353, "127.0.0.1"}, {"TCP", 80, 0, ""}, {"", 81, 8081, ""}};
  a.dns_servers = {"198.18.0.1"};
  a.dns_searches = {"svc.cluster.local"};
  a.annotations = {{"kubernetes.io/ingress-bandwidth", "1M"},
                   {"kubernetes.io/egress-bandwidth", "10Mi"},
                   {"other", "x"}};
  ASSERT_TRUE(m.add(a).ok());
  EXPECT_EQ(stdinOf("all", "ADD")["runtimeConfig"], json::parse(R"({
      "portMappings": [
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
        {"hostPort": 8081, "containerPort": 81, "protocol": "tcp"}],
      "dns": {"servers": ["198.18.0.1"], "searches": ["svc.cluster.local"], "options": []},
      "bandwidth": {"ingressRate": 1000000, "ingressBurst": 4294967295,
                    "egressRate": 10485760, "egressBurst": 4294967295},
      "io.kubernetes.cri.pod-annotations": {"kubernetes.io/ingress-bandwidth": "1M",
                                            "kubernetes.io/egress-bandwidth": "10Mi",
                                            "other": "x"}})"));
  EXPECT_FALSE(stdinOf("none", "ADD").contains("runtimeConfig"));

  // Without DNS, ports or bandwidth only the (empty) annotations are left.
  ASSERT_TRUE(m.add(attachment("pod2")).ok());
  EXPECT_EQ(stdinOf("all", "ADD")["runtimeConfig"],
            json::parse(R"({"io.kubernetes.cri.pod-annotations": {}})"));
}

TEST_F(CniTest, BadBandwidthAnnotationFailsAddBeforeAnyPlugin) {
  plugin("p", printResult(result("198.18.0.2/24")));
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}});
  CniManager m(options());
  CniAttachment a = attachment();
  a.annotations = {{"kubernetes.io/egress-bandwidth", "10"}};
  absl::StatusOr<json> added = m.add(a);
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(added.status().message(), HasSubstr("kubernetes.io/egress-bandwidth"));
  EXPECT_TRUE(calls().empty());
  // DEL still runs, without the bandwidth.
  EXPECT_TRUE(m.del(a, nullptr).ok());
}

TEST(CniBandwidthTest, Quantities) {
  struct Case {
    const char* text;
    uint64_t bits;
  };
  for (const Case& c : std::vector<Case>{{"1k", 1000},
                                         {"1000", 1000},
                                         {"1M", 1000000},
                                         {"10Mi", 10485760},
                                         {"1G", 1000000000},
                                         {"1.5k", 1500},
                                         {"1.5Ki", 1536},
                                         {"0.5M", 500000},
                                         {".5M", 500000},
                                         {"+2M", 2000000},
                                         {"1e6", 1000000},
                                         {"1E3", 1000},
                                         {"1000500m", 1001},  // rounded up
                                         {"1P", 1000000000000000}}) {
    absl::StatusOr<uint64_t> v = cni_internal::parseBandwidth(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    EXPECT_EQ(*v, c.bits) << c.text;
  }
  for (const char* bad : {"", "999", "1500m", "-1M", "0", "2P", "1Pi", "1E", "1K", "1Q", "M",
                          "1.2.3", "1e", "abc", "1 M"}) {
    absl::StatusOr<uint64_t> v = cni_internal::parseBandwidth(bad);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
  }
  EXPECT_THAT(std::string(cni_internal::parseBandwidth("999").status().message()),
              HasSubstr("unreasonably small"));
  EXPECT_THAT(std::string(cni_internal::parseBandwidth("2P").status().message()),
              HasSubstr("unreasonably large"));
}

TEST_F(CniTest, FailedAddRunsDelForTheListAndReturnsThePluginError) {
  json r1 = result("198.18.0.2/24");
  plugin("a", printResult(r1));
  plugin("b",
         "if [ \"$CNI_COMMAND\" = ADD ]; then\n" + printError(7, "bad config", "field x") + "fi\n");
  plugin("c", printResult(result("198.18.0.4/24")));
  writeList("10.conflist", "1.0.0", {json{{"type", "a"}}, json{{"type", "b"}}, json{{"type", "c"}}},
            "net");
  CniManager m(options());
  absl::StatusOr<json> added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(added.status().message(),
            "plugin \"b\" (network \"net\") failed: bad config (code 7): field x");
  EXPECT_THAT(calls(), ElementsAre("a ADD", "b ADD", "c DEL", "b DEL", "a DEL"));
  // The clean-up gets what was set up so far.
  EXPECT_EQ(stdinOf("c", "DEL")["prevResult"], r1);
}

TEST_F(CniTest, ErrorCodesMapToStatusCodes) {
  struct Case {
    int code;
    const char* details;
    absl::StatusCode want;
    const char* message;
  };
  plugin("p", "");
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}}, "net");
  CniManager m(options());
  for (const Case& c : std::vector<Case>{
           {4, "", absl::StatusCode::kInvalidArgument, "failed: oops (code 4)"},
           {6, "d", absl::StatusCode::kInvalidArgument, "failed: oops (code 6): d"},
           {7, "", absl::StatusCode::kInvalidArgument, "failed: oops (code 7)"},
           {11, "", absl::StatusCode::kUnavailable, "failed: oops (code 11)"},
           {1, "", absl::StatusCode::kInternal, "failed: oops (code 1)"},
           {5, "", absl::StatusCode::kInternal, "failed: oops (code 5)"},
           {100, "ipam", absl::StatusCode::kInternal, "failed: oops (code 100): ipam"}}) {
    plugin("p", "[ \"$CNI_COMMAND\" = ADD ] || exit 0\n" + printError(c.code, "oops", c.details));
    absl::StatusOr<json> added = m.add(attachment());
    EXPECT_EQ(added.status().code(), c.want) << c.code;
    EXPECT_EQ(added.status().message(), absl::StrCat("plugin \"p\" (network \"net\") ", c.message));
  }
}

TEST_F(CniTest, FailureWithoutErrorJsonCarriesStderr) {
  plugin("p", "echo 'first line' >&2\necho 'cannot create veth' >&2\nexit 3\n");
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}}, "net");
  CniManager m(options());
  absl::StatusOr<json> added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(added.status().message(),
            "plugin \"p\" (network \"net\") failed: exit status 3: first line\ncannot create veth");
}

TEST_F(CniTest, AddWithoutResultFails) {
  plugin("p", "echo 'not json'\n");
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}}, "net");
  CniManager m(options());
  absl::StatusOr<json> added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(added.status().message(), HasSubstr("invalid JSON: not json"));
  EXPECT_THAT(calls(), ElementsAre("p ADD", "p DEL"));

  plugin("p", "");  // exits 0 and prints nothing
  added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(added.status().message(), HasSubstr("returned no result"));
}

TEST_F(CniTest, DelRunsInReverseAndContinuesAfterErrors) {
  plugin("a", "");
  plugin("b", printError(3, "gone", ""));
  plugin("c", "");
  writeList("10.conflist", "1.0.0", {json{{"type", "a"}}, json{{"type", "b"}}, json{{"type", "c"}}},
            "net");
  CniManager m(options());
  CniAttachment a = attachment();
  a.netns_path = tmp_ / "no-such-netns";
  json prev = result("198.18.0.2/24");
  absl::Status st = m.del(a, prev);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(st.message(), "plugin \"b\" (network \"net\") failed: gone (code 3)");
  EXPECT_THAT(calls(), ElementsAre("c DEL", "b DEL", "a DEL"));
  for (const char* type : {"a", "b", "c"}) {
    EXPECT_EQ(stdinOf(type, "DEL")["prevResult"], prev) << type;
    EXPECT_THAT(envOf(type, "DEL"), ::testing::Contains("CNI_NETNS=" + a.netns_path));
  }
}

TEST_F(CniTest, DelOnOldVersionsHasNoPrevResult) {
  plugin("a", "");
  writeList("10.conflist", "0.3.1", {json{{"type", "a"}}});
  CniManager m(options());
  CniAttachment a = attachment();
  a.netns_path = "";
  EXPECT_TRUE(m.del(a, result("198.18.0.2/24")).ok());
  json conf = stdinOf("a", "DEL");
  EXPECT_EQ(conf["cniVersion"], "0.3.1");
  EXPECT_FALSE(conf.contains("prevResult"));
  EXPECT_THAT(envOf("a", "DEL"), ::testing::Contains("CNI_NETNS="));
}

TEST_F(CniTest, CheckRunsInOrderWithPrevResult) {
  plugin("a", "");
  plugin("b", printError(11, "busy", ""));
  plugin("c", "");
  writeList("10.conflist", "0.4.0", {json{{"type", "a"}}, json{{"type", "b"}}, json{{"type", "c"}}},
            "net");
  CniManager m(options());
  json prev = result("198.18.0.2/24");
  absl::Status st = m.check(attachment(), prev);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(calls(), ElementsAre("a CHECK", "b CHECK"));
  EXPECT_EQ(stdinOf("a", "CHECK")["prevResult"], prev);
  EXPECT_EQ(m.check(attachment(), nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CniTest, CheckNeedsVersion040AndHonoursDisableCheck) {
  plugin("a", "");
  writeList("10.conflist", "0.3.1", {json{{"type", "a"}}});
  {
    CniManager m(options());
    EXPECT_EQ(m.check(attachment(), result("198.18.0.2/24")).code(),
              absl::StatusCode::kFailedPrecondition);
  }
  writeConf("10.conflist",
            R"({"cniVersion":"1.0.0","name":"n","disableCheck":true,"plugins":[{"type":"a"}]})");
  CniManager m(options());
  EXPECT_TRUE(m.check(attachment(), result("198.18.0.2/24")).ok());
  EXPECT_TRUE(calls().empty());
}

TEST_F(CniTest, TimeoutKillsThePluginAndWhatItStarted) {
  plugin("slow",
         "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
         "  echo $$ > \"$out/slow.pid\"\n"
         "  sleep 30 &\n"
         "  echo $! > \"$out/sleep.pid\"\n"
         "  wait\n"
         "fi\n");
  writeList("10.conflist", "1.0.0", {json{{"type", "slow"}}}, "net");
  CniOptions o = options();
  o.plugin_timeout = absl::Milliseconds(500);
  CniManager m(o);
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<json> added = m.add(attachment());
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(added.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(added.status().message(), HasSubstr("plugin \"slow\" (network \"net\")"));
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_THAT(calls(), ElementsAre("slow ADD", "slow DEL"));

  for (const char* file : {"slow.pid", "sleep.pid"}) {
    std::string text = readFile(out_dir_ + "/" + file).value_or("");
    pid_t pid = static_cast<pid_t>(std::atoi(text.c_str()));
    ASSERT_GT(pid, 1) << file;
    // An orphan is reaped by init in its own time; a zombie counts as gone.
    for (int i = 0; i < 100 && !processGone(pid); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(processGone(pid)) << file << " " << pid;
  }
}

TEST_F(CniTest, OutputHeldOpenAfterExitDoesNotBlock) {
  // Something the plugin started keeps its stdout open after the plugin has exited.
  plugin("p", "sleep 30 &\necho $! > \"$out/bg.pid\"\n" + printResult(result("198.18.0.2/24")));
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}});
  CniManager m(options());
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<json> added = m.add(attachment());
  auto elapsed = std::chrono::steady_clock::now() - start;
  pid_t bg = static_cast<pid_t>(std::atoi(readFile(out_dir_ + "/bg.pid").value_or("0").c_str()));
  if (bg > 1) ::kill(bg, SIGKILL);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_THAT(resultIps(*added), ElementsAre("198.18.0.2"));
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST_F(CniTest, ConcurrentAddsForDifferentPods) {
  plugin("p", printResult(result("198.18.0.2/24")) + "sleep 0.2\n");
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}});
  CniManager m(options());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      if (m.add(attachment(absl::StrCat("pod", i))).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(calls().size(), 6u);
}

TEST_F(CniTest, BinaryRemovedAfterLoadIsFailedPrecondition) {
  plugin("p", printResult(result("198.18.0.2/24")));
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}}, "net");
  CniOptions o = options();
  o.reload_interval = absl::Hours(1);
  CniManager m(o);
  ASSERT_TRUE(m.readiness().ready);
  ASSERT_EQ(::unlink((bin_dir_ + "/p").c_str()), 0);
  absl::StatusOr<json> added = m.add(attachment());
  EXPECT_EQ(added.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(added.status().message(),
              HasSubstr(absl::StrCat("plugin \"p\" not found in ", bin_dir_, ":", bin_dir2_)));
}

TEST_F(CniTest, ConfigWrittenLaterIsPickedUp) {
  plugin("p", "");
  CniManager m(options());
  EXPECT_FALSE(m.readiness().ready);
  writeList("10.conflist", "1.0.0", {json{{"type", "p"}}}, "late");
  for (int i = 0; i < 100 && !m.readiness().ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(m.readiness().ready);
  ASSERT_NE(m.network(), nullptr);
  EXPECT_EQ(m.network()->name, "late");

  // An unchanged directory keeps the same config object.
  auto before = m.network();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(m.network(), before);

  ASSERT_EQ(::unlink((conf_dir_ + "/10.conflist").c_str()), 0);
  for (int i = 0; i < 100 && m.network() != nullptr; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(m.network(), nullptr);
  EXPECT_FALSE(m.readiness().ready);
}

TEST_F(CniTest, DestructorStopsTheWatcherPromptly) {
  CniOptions o = options();
  o.reload_interval = absl::Hours(1);
  auto start = std::chrono::steady_clock::now();
  { CniManager m(o); }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(CniResultTest, ResultIps) {
  json v040 = json::parse(R"({"cniVersion":"0.4.0",
      "ips":[{"version":"6","address":"fd00::5/64"},
             {"version":"4","address":"198.18.0.5/24","gateway":"198.18.0.1"},
             {"version":"4","address":"198.18.1.5/24"}]})");
  EXPECT_THAT(resultIps(v040), ElementsAre("198.18.0.5", "198.18.1.5", "fd00::5"));
  json v100 = json::parse(R"({"cniVersion":"1.0.0",
      "interfaces":[{"name":"eth0"}],
      "ips":[{"address":"fd00::7/64","interface":0},{"address":"198.18.0.7/16","interface":0}]})");
  EXPECT_THAT(resultIps(v100), ElementsAre("198.18.0.7", "fd00::7"));
  EXPECT_TRUE(resultIps(json()).empty());
  EXPECT_TRUE(resultIps(json::parse(R"({"ips":"x"})")).empty());
  EXPECT_TRUE(resultIps(json::parse(R"({"ips":[1,{"address":5}]})")).empty());
}

}  // namespace
}  // namespace berth::network
