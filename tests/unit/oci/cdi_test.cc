// CDI spec files (JSON and YAML) and the edits they make to an OCI spec.
#include "oci/cdi.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_dir.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using testing::TestDir;

constexpr char kYaml[] = R"(cdiVersion: "0.6.0"
kind: berth.test/gpu
annotations:
  origin: test
containerEdits:
  env: [SPEC_WIDE=1]
devices:
  - name: one
    containerEdits:
      env: ["GPU=one", "PATH=/vendor/bin"]
      deviceNodes:
        - path: /dev/berth-gpu0
          hostPath: /dev/null
          permissions: rw
        - path: /dev/berth-fifo
          type: p
      mounts:
        - hostPath: /opt/vendor
          containerPath: /usr/local/vendor/lib
          options: [ro, bind]
        - hostPath: /opt/vendor-bin
          containerPath: /vendor
          options: [ro, bind]
      hooks:
        - hookName: createContainer
          path: /usr/bin/vendor-hook
          args: [vendor-hook, --ldconfig]
          timeout: 5
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/berth-gpu1
          type: c
          major: 195
          minor: 1
          fileMode: 0660
          permissions: none
)";

json baseSpec() {
  return json::parse(R"({"process": {"env": ["PATH=/bin", "HOME=/"], "user": {"uid": 1000,
      "gid": 1000, "additionalGids": [1000]}}, "mounts": [{"destination": "/proc"},
      {"destination": "/dev/shm"}], "linux": {"devices": [], "resources": {"devices": []}}})");
}

TEST(CdiSpecTest, YamlAndJsonReadTheSame) {
  auto y = parseCdiSpec(kYaml, true, "gpu.yaml");
  ASSERT_TRUE(y.ok()) << y.status();
  auto j = parseCdiSpec(y->dump(), false, "gpu.json");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, *y);
  // YAML 1.1 as the CDI library reads it: 0660 is octal, "0" a string.
  EXPECT_EQ((*y)["devices"][1]["containerEdits"]["deviceNodes"][0]["fileMode"], 0660);
  EXPECT_EQ((*y)["devices"][1]["name"], "0");
  EXPECT_EQ((*y)["devices"][0]["containerEdits"]["hooks"][0]["timeout"], 5);
}

TEST(CdiSpecTest, VersionsKindsAndNamesAreChecked) {
  struct Case {
    std::string text, says;
  };
  const Case bad[] = {
      {R"({"cdiVersion": "0.9.0", "kind": "a.b/c", "devices": [{"name": "x"}]})",
       "unknown cdiVersion \"0.9.0\""},
      // hostPath needs 0.5.0.
      {R"({"cdiVersion": "0.4.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/null"}]}}]})",
       "needs 0.5.0"},
      // additionalGids need 0.7.0.
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"additionalGids": [5]}}]})",
       "needs 0.7.0"},
      {R"({"cdiVersion": "0.6.0", "kind": "nokind", "devices": [{"name": "x"}]})",
       "is not vendor/class"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "-x"}]})",
       "invalid device name \"-x\""},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": []})", "no devices"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"env": ["NOEQUALS"]}}]})",
       "has no '='"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"hooks": [{"hookName": "later", "path": "/x"}]}}]})",
       "unknown hook name \"later\""},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"deviceNodes": [{"path": "/dev/x", "permissions": "rwx"}]}}]})",
       "not letters of rwm"},
      // Fields of the wrong type are refused here, never met later.
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"deviceNodes": [{"path": "/dev/x", "type": 3}]}}]})",
       "wrong type"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"deviceNodes": [{"path": "/dev/x", "major": "one"}]}}]})",
       "wrong type"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"deviceNodes": [{"path": "/dev/x", "uid": -1}]}}]})",
       "wrong type"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"mounts": [{"hostPath": "/a", "containerPath": "/b", "type": 1}]}}]})",
       "must be strings"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"hooks": [{"hookName": "prestart", "path": "/x", "timeout": "5s"}]}}]})",
       "timeout"},
      {R"({"cdiVersion": "0.6.0", "kind": "a.b/c", "devices": [{"name": "x", "containerEdits":
          {"deviceNodes": {"path": "/dev/x"}}}]})",
       "deviceNodes is not a list"},
  };
  for (const Case& c : bad) {
    auto s = parseCdiSpec(c.text, false, "f.json");
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.says), std::string::npos) << s.status();
    EXPECT_NE(s.status().message().find("f.json"), std::string::npos) << s.status();
  }
  for (const char* v : {"0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0", "v0.6.0"}) {
    std::string text = std::string(R"({"cdiVersion": ")") + v +
                       R"(", "kind": "a.b/c", "devices": [{"name": "x"}]})";
    EXPECT_TRUE(parseCdiSpec(text, false, "f.json").ok()) << v;
  }
}

class CdiInjectTest : public ::testing::Test {
 protected:
  void write(const std::string& sub, const std::string& name, const std::string& text) {
    std::filesystem::create_directories(dir_ / sub);
    std::ofstream(dir_ / (sub + "/" + name)) << text;
  }
  std::vector<std::string> dirs() const { return {dir_ / "etc", dir_ / "run"}; }
  TestDir dir_;
};

TEST_F(CdiInjectTest, EditsAreAppliedAsTheCdiLibraryApplies) {
  write("etc", "gpu.yaml", kYaml);
  json spec = baseSpec();
  ASSERT_TRUE(injectCdiDevices(dirs(), {"berth.test/gpu=one", "berth.test/gpu=0"}, spec).ok());
  // Environment: the spec's own edits once, then the devices'; a key given again is replaced.
  EXPECT_EQ(spec["process"]["env"], json({"PATH=/vendor/bin", "HOME=/", "SPEC_WIDE=1", "GPU=one"}));
  // Device nodes: /dev/null's type and numbers filled in; the process user owns them.
  const json& devs = spec["linux"]["devices"];
  ASSERT_EQ(devs.size(), 3u) << devs;
  EXPECT_EQ(devs[0]["path"], "/dev/berth-gpu0");
  EXPECT_EQ(devs[0]["type"], "c");
  EXPECT_EQ(devs[0]["major"], 1);
  EXPECT_EQ(devs[0]["minor"], 3);
  EXPECT_EQ(devs[0]["uid"], 1000u);
  EXPECT_EQ(devs[1]["type"], "p");
  EXPECT_EQ(devs[2]["fileMode"], 0660);
  // Cgroup access: as asked ("rw"), or none at all.
  const json& allow = spec["linux"]["resources"]["devices"];
  ASSERT_EQ(allow.size(), 2u) << allow;
  EXPECT_EQ(allow[0],
            json({{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rw"}}));
  EXPECT_EQ(allow[1]["access"], "");
  // Mounts sorted by depth, stable.
  std::vector<std::string> dests;
  for (const json& m : spec["mounts"]) dests.push_back(m["destination"]);
  EXPECT_EQ(dests,
            (std::vector<std::string>{"/proc", "/vendor", "/dev/shm", "/usr/local/vendor/lib"}));
  EXPECT_EQ(spec["hooks"]["createContainer"][0], json({{"path", "/usr/bin/vendor-hook"},
                                                       {"args", {"vendor-hook", "--ldconfig"}},
                                                       {"timeout", 5}}));
}

TEST_F(CdiInjectTest, ExtraGroupsAndALaterDirectoryWins) {
  write("etc", "a.json", R"({"cdiVersion": "0.7.0", "kind": "berth.test/x", "devices": [
      {"name": "d", "containerEdits": {"env": ["FROM=etc"]}}]})");
  write("run", "a.json", R"({"cdiVersion": "0.7.0", "kind": "berth.test/x", "devices": [
      {"name": "d", "containerEdits": {"env": ["FROM=run"], "additionalGids": [0, 1000, 44]}}]})");
  json spec = baseSpec();
  ASSERT_TRUE(injectCdiDevices(dirs(), {"berth.test/x=d"}, spec).ok());
  EXPECT_EQ(spec["process"]["env"].back(), "FROM=run");
  EXPECT_EQ(spec["process"]["user"]["additionalGids"], json({1000, 44}));
}

TEST_F(CdiInjectTest, UnknownDevicesAndBrokenSpecsAreNamed) {
  write("etc", "broken.yaml", "cdiVersion: [unclosed\n");
  write("run", "ok.json", R"({"cdiVersion": "0.6.0", "kind": "berth.test/x", "devices": [
      {"name": "d"}]})");
  json spec = baseSpec();
  absl::Status st = injectCdiDevices(dirs(), {"berth.test/x=d", "berth.test/x=nope"}, spec);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("unresolvable CDI devices berth.test/x=nope"), std::string::npos)
      << st;
  EXPECT_NE(st.message().find("broken.yaml"), std::string::npos) << st;
  EXPECT_TRUE(injectCdiDevices(dirs(), {}, spec).ok()) << "nothing asked, nothing read";
}

// What runc 1.1.5 would drop without a word is refused.
TEST_F(CdiInjectTest, EditsRuncCannotMakeAreRefused) {
  write("run", "net.json", R"({"cdiVersion": "1.1.0", "kind": "berth.test/net", "devices": [
      {"name": "n", "containerEdits": {"netDevices": [{"hostInterfaceName": "eth9",
       "name": "net0"}]}}]})");
  json spec = baseSpec();
  absl::Status st = injectCdiDevices(dirs(), {"berth.test/net=n"}, spec);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("netDevices"), std::string::npos) << st;
}

}  // namespace
}  // namespace berth::oci
