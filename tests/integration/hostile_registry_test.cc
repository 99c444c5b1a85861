// The hostile registry helper on its own: it starts the script, reads its info, counts what
// was fetched and leaves nothing behind. No berthd involved.
#include "hostile_registry.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <filesystem>

#include "berthd_fixture.h"

namespace berth::testing {
namespace {

TEST(HostileRegistryTest, ServesEveryScenarioAndCountsRequests) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  EXPECT_EQ(reg.host(), "127.0.0.1:" + std::to_string(reg.port()));
  for (const char* name :
       {"honest", "trojan", "trojan-second-layer", "deep-config", "deep-manifest", "deep-index",
        "big-config", "trickle", "trickle-manifest", "endless-error", "endless-error-slow",
        "no-size", "size-minus-one", "size-lies", "gzip-bomb", "entries-bomb", "held-layers"}) {
    EXPECT_EQ(reg.ref(name), reg.host() + "/hostile/" + name + ":1");
  }
  EXPECT_EQ(reg.info()["scenarios"].size(), 17u);
  const nlohmann::json& honest = reg.scenario("honest");
  ASSERT_TRUE(honest.is_object());

  EXPECT_EQ(reg.requests(reg.manifestPath("honest")), 0);
  RunResult r = runProgram({"curl", "-sSf", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://" + reg.host() + reg.manifestPath("honest")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  EXPECT_EQ(reg.requests(reg.manifestPath("honest")), 1);
  EXPECT_EQ(reg.bytesSent(reg.manifestPath("honest")), honest["manifest_size"].get<int64_t>());
  EXPECT_EQ(reg.requests(reg.layerPath("honest")), 0);
  EXPECT_EQ(reg.layerPath("honest"),
            "/v2/hostile/honest/blobs/" + honest["layer_digests"][0].get<std::string>());
  EXPECT_EQ(reg.stats()["methods"]["GET " + reg.manifestPath("honest")], 1);
  EXPECT_EQ(reg.stop(), 0) << reg.log();
  EXPECT_FALSE(reg.running());
}

TEST(HostileRegistryTest, DestructionEndsTheProcessAndRemovesItsDir) {
  pid_t pid = -1;
  std::string dir;
  {
    HostileRegistry reg({"--trickle-bps", "50"});
    ASSERT_TRUE(reg.start()) << reg.log();
    EXPECT_EQ(reg.info()["trickle_bytes_per_second"], 50.0);
    pid = reg.pid();
    dir = reg.dir();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  // Reaped, so the pid names no process (reuse within this instant is not a concern).
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(HostileRegistryTest, StartFailsWhenTheScriptFails) {
  HostileRegistry reg({"--trickle-bps", "0"});  // refused by the script's argument check
  EXPECT_FALSE(reg.start());
  EXPECT_FALSE(reg.running());
  EXPECT_NE(reg.log().find("--trickle-bps"), std::string::npos) << reg.log();
}

}  // namespace
}  // namespace berth::testing
