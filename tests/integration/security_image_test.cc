// Issue 12, points 1, 2, 4 and 6: a hostile registry (tests/env/hostile_registry.py) attacks a
// real berthd. Each attack must fail safely: the pull refused with a clear error, nothing of it
// kept, berthd alive and serving, other pulls and removals unaffected.
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hostile_registry.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> dirNames(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename());
  }
  return out;
}

// Everything berthd keeps of images: blobs and layer snapshots.
size_t blobCount(Berthd& d) { return dirNames(d.root() + "/content/blobs/sha256").size(); }
size_t snapshotCount(Berthd& d) { return dirNames(d.root() + "/snapshots").size(); }

// A READY host-network pod and a running `sleep` container from `image` in it.
struct Workload {
  std::string pod, ctr;
};
Workload runBusybox(Berthd& d, const std::string& image, const std::string& name) {
  Workload w;
  v1::PodSandboxConfig pc = hostNetworkPod(name);
  EXPECT_TRUE(runPod(d, pc, &w.pod).ok()) << d.log();
  v1::ContainerConfig cc = sleepContainer("app", image);
  grpc::Status st = createContainer(d, w.pod, cc, pc, &w.ctr);
  EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  EXPECT_TRUE(startContainer(d, w.ctr).ok()) << d.log();
  return w;
}

// The exit code of `cmd` in the container.
int exec(Berthd& d, const std::string& ctr, const std::vector<std::string>& cmd) {
  v1::ExecSyncResponse out;
  grpc::Status st = execSync(d, ctr, cmd, &out, 30);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return out.exit_code();
}

TEST(SecurityImageTest, TrojanLayerClaimingAnotherImagesDiffIdIsRefusedAndNothingKept) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  const nlohmann::json& trojan = reg.scenario("trojan");
  ASSERT_EQ(trojan["claimed_diff_id"], reg.info()["busybox_diff_id"]);
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();

  // Pulled first, the trojan must not become the layer every busybox image uses.
  grpc::Status st = pullImage(d, reg.ref("trojan"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr(trojan["claimed_diff_id"].get<std::string>()));
  EXPECT_THAT(st.error_message(), HasSubstr(trojan["real_diff_id"].get<std::string>()));
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_EQ(blobCount(d), 0u) << "the failed pull's manifest, config and layer are gone";
  EXPECT_EQ(snapshotCount(d), 0u);

  // The real image is then downloaded, and its containers run its own files.
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok()) << d.log();
  Workload w = runBusybox(d, busybox, "sec-trojan");
  EXPECT_NE(exec(d, w.ctr, {"cat", "/trojan"}), 0) << "the trojan's file is in the rootfs";
  EXPECT_EQ(exec(d, w.ctr, {"true"}), 0);

  // Pulled after the real image, the trojan finds the checked layer and cannot replace it:
  // its own layer is never even fetched, and its containers get the real files.
  const std::string layer_path =
      reg.blobPath("trojan", trojan["layer_digest"].get<std::string>());
  int64_t fetched = reg.requests(layer_path);
  st = pullImage(d, reg.ref("trojan"));
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(reg.requests(layer_path), fetched);
  Workload w2 = runBusybox(d, reg.ref("trojan"), "sec-trojan-2");
  EXPECT_NE(exec(d, w2.ctr, {"cat", "/trojan"}), 0);
}

TEST(SecurityImageTest, TrojanSecondLayerIsRefusedAndTheHonestImageIsUnharmed) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  const nlohmann::json& sc = reg.scenario("trojan-second-layer");
  nlohmann::json spec = sc["honest_spec"];
  spec["repo"] = "berth-test/honest-second-" + std::to_string(::getpid());
  nlohmann::json honest = pushImage(spec);
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();

  grpc::Status st = pullImage(d, reg.ref("trojan-second-layer"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr(sc["claimed_diff_id"].get<std::string>()));
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_EQ(blobCount(d), 0u);
  EXPECT_EQ(snapshotCount(d), 0u);

  ASSERT_TRUE(pullImage(d, honest["ref"]).ok()) << d.log();
  EXPECT_EQ(listImages(d).size(), 1u);
  EXPECT_EQ(listImages(d)[0].id(), honest["config_digest"]);
}

TEST(SecurityImageTest, DeeplyNestedJsonIsRefusedAndBerthdKeepsServing) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  for (const char* name : {"deep-config", "deep-manifest", "deep-index"}) {
    grpc::Status st = pullImage(d, reg.ref(name));
    EXPECT_FALSE(st.ok()) << name;
    EXPECT_THAT(st.error_message(), HasSubstr("deeper than 64 levels")) << name;
  }
  grpc::Status big = pullImage(d, reg.ref("big-config"));
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << big.error_message();
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_EQ(blobCount(d), 0u);

  // Alive and serving, verbose status included, also after a restart.
  ASSERT_TRUE(pullImage(d, reg.ref("honest")).ok()) << d.log();
  for (int round = 0; round < 2; ++round) {
    v1::ImageStatusResponse status = imageStatus(d, reg.ref("honest"), /*verbose=*/true);
    ASSERT_TRUE(status.has_image());
    auto info = nlohmann::json::parse(status.info().at("info"), nullptr, false);
    ASSERT_TRUE(info.is_object()) << status.info().at("info");
    EXPECT_EQ(info["imageSpec"]["rootfs"]["diff_ids"][0], reg.info()["busybox_diff_id"]);
    EXPECT_EQ(d.stop(), 0);
    ASSERT_TRUE(d.start()) << d.log();
  }
}

TEST(SecurityImageTest, SlowRegistryCannotStallOtherPullsOrRemoval) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  Berthd d(
      "[image]\nprogress_timeout_seconds = 6\nmin_transfer_rate_bytes_per_second = 1024\n"
      "blob_timeout_seconds = 30\nretries = 0\n");
  ASSERT_TRUE(d.start()) << d.log();

  // A blob trickled at 5 bytes/s: cut by the minimum rate, not after hours.
  std::atomic<bool> trickle_done{false};
  grpc::Status trickle;
  auto started = std::chrono::steady_clock::now();
  std::thread slow([&] {
    trickle = pullImage(d, reg.ref("trickle"));
    trickle_done = true;
  });
  // Meanwhile another pull and a removal go through at once.
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  grpc::Status other = pullImage(d, busybox);
  grpc::Status removed = removeImage(d, busybox);
  bool during = !trickle_done;
  slow.join();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(other.ok()) << other.error_message();
  EXPECT_TRUE(removed.ok()) << removed.error_message();
  EXPECT_TRUE(during) << "the other pull and the removal waited for the slow pull";
  EXPECT_FALSE(trickle.ok());
  EXPECT_LT(took, std::chrono::seconds(25)) << trickle.error_message();
  EXPECT_TRUE(listImages(d).empty());

  // An error body that never ends is cut after its first 64 KiB.
  auto t0 = std::chrono::steady_clock::now();
  grpc::Status endless = pullImage(d, reg.ref("endless-error"));
  EXPECT_EQ(endless.error_code(), grpc::StatusCode::UNAVAILABLE) << endless.error_message();
  EXPECT_THAT(endless.error_message(), HasSubstr("500"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  EXPECT_LT(reg.bytesSent(reg.layerPath("endless-error")), 32 << 20);
  EXPECT_EQ(blobCount(d), 0u);
}

TEST(SecurityImageTest, LayersThatWouldFillTheDiskAreRefused) {
  HostileRegistry reg;
  ASSERT_TRUE(reg.start()) << reg.log();
  Berthd d("[image]\nmax_layer_bytes = 67108864\nmax_layer_entries = 10000\n");
  ASSERT_TRUE(d.start()) << d.log();

  // A descriptor without a size (or -1) is refused before anything is downloaded.
  for (const char* name : {"no-size", "size-minus-one"}) {
    grpc::Status st = pullImage(d, reg.ref(name));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
    EXPECT_THAT(st.error_message(), HasSubstr("has no valid size")) << name;
    EXPECT_EQ(reg.requests(reg.layerPath(name)), 0) << name;
  }
  // A blob larger than its descriptor says stops at that size.
  grpc::Status lies = pullImage(d, reg.ref("size-lies"));
  EXPECT_EQ(lies.error_code(), grpc::StatusCode::DATA_LOSS) << lies.error_message();
  EXPECT_THAT(lies.error_message(), HasSubstr("size mismatch"));

  // 1 MB that uncompresses to 1 GiB, and 200,000 files: stopped at the configured bounds.
  grpc::Status bomb = pullImage(d, reg.ref("gzip-bomb"));
  EXPECT_EQ(bomb.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << bomb.error_message();
  EXPECT_THAT(bomb.error_message(), HasSubstr("67108864"));
  grpc::Status entries = pullImage(d, reg.ref("entries-bomb"));
  EXPECT_EQ(entries.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << entries.error_message();
  EXPECT_THAT(entries.error_message(), HasSubstr("10000"));

  EXPECT_TRUE(listImages(d).empty());
  EXPECT_EQ(blobCount(d), 0u);
  EXPECT_EQ(snapshotCount(d), 0u) << "half-unpacked layers are removed";
  EXPECT_EQ(dirNames(d.root() + "/content/ingest").size(), 0u);
  ASSERT_TRUE(pullImage(d, reg.ref("honest")).ok()) << d.log();
}

// Runs `sql` on the metadata store of a stopped berthd.
void runSql(Berthd& d, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((d.root() + "/meta.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// A store written by a berth that did not check layers (schema 2) may hold a layer whose files
// are not what its chain id says. After the upgrade no container is made from such a layer.
TEST(SecurityImageTest, LayersOfAnOlderStoreAreCheckedBeforeUse) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok()) << d.log();
  std::vector<std::string> old_dirs = dirNames(d.root() + "/snapshots");
  ASSERT_EQ(old_dirs.size(), 1u);
  ASSERT_EQ(d.stop(), 0);
  // What an older berth left: no diff ids, schema 2, and a file planted in the layer.
  runSql(d, "UPDATE snapshots SET data = json_remove(data, '$.diff_id'); "
            "PRAGMA user_version = 2;");
  std::ofstream(d.root() + "/snapshots/" + old_dirs[0] + "/fs/trojan") << "trojan\n";

  ASSERT_TRUE(d.start()) << d.log();
  v1::ImageStatusResponse st = imageStatus(d, busybox);
  EXPECT_TRUE(st.has_image()) << "the image is kept";
  Workload w = runBusybox(d, busybox, "sec-old-store");
  EXPECT_NE(exec(d, w.ctr, {"cat", "/trojan"}), 0) << "the unchecked layer was used";
  EXPECT_EQ(exec(d, w.ctr, {"true"}), 0);
  // The quarantined layer goes with the next collection, as no container sits on it.
  ASSERT_TRUE(pullImage(d, envKey("BERTH_TEST_IMAGE_BUSYBOX_LATEST")).ok());
  EXPECT_FALSE(std::filesystem::exists(d.root() + "/snapshots/" + old_dirs[0]));
}

}  // namespace
}  // namespace berth::testing
