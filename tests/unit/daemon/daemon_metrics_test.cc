// berthd's own metrics: pods and containers by state from the store, shims from a fake
// /proc, image pulls, the [metrics] config table, and the endpoint started from config.
#include "daemon/daemon_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon/config.h"

namespace berth::daemon {
namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

class DaemonMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/daemon-metrics-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_ + "/proc/100");
    std::filesystem::create_directories(dir_ + "/proc/200");
    std::ofstream(dir_ + "/proc/100/statm") << "500 10 0 0 0 0 0\n";
    std::ofstream(dir_ + "/proc/200/statm") << "500 30 0 0 0 0 0\n";
    auto store = store::Store::open(dir_ + "/meta.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(DaemonMetricsTest, PodsContainersAndShimsAreComputedAtScrape) {
  DaemonMetrics m;
  std::vector<int> pids = {100, 200, 300};  // 300 has exited: not counted
  m.watch(
      *store_, [&pids] { return pids; }, dir_ + "/proc");
  std::string text = m.registry().render();
  for (const char* state : {"created", "ready", "not_ready", "unknown"}) {
    EXPECT_TRUE(has(text, std::string("berth_pods{state=\"") + state + "\"} 0")) << text;
  }
  EXPECT_TRUE(has(text, "berth_containers{state=\"running\"} 0")) << text;
  uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_TRUE(has(text, "berth_shims 2")) << text;
  EXPECT_TRUE(has(text, "berth_shim_memory_bytes " + std::to_string(40 * page))) << text;

  store::SandboxRecord pod;
  pod.id = std::string(64, 'a');
  pod.name = "web_default_uid_0";
  ASSERT_TRUE(store_->createSandbox(pod).ok());
  pod.id = std::string(64, 'b');
  pod.name = "db_default_uid_0";
  ASSERT_TRUE(store_->createSandbox(pod).ok());
  ASSERT_TRUE(store_
                  ->updateSandbox(pod.id,
                                  [](store::SandboxRecord& r) {
                                    r.state = store::SandboxState::kReady;
                                    return absl::OkStatus();
                                  })
                  .ok());
  store::ContainerRecord c;
  c.id = std::string(64, 'c');
  c.sandbox_id = pod.id;
  c.name = "db_db_default_uid_0_0";
  ASSERT_TRUE(store_->createContainer(c).ok());
  pids = {100};
  text = m.registry().render();
  EXPECT_TRUE(has(text, "berth_pods{state=\"created\"} 1")) << text;
  EXPECT_TRUE(has(text, "berth_pods{state=\"ready\"} 1")) << text;
  EXPECT_TRUE(has(text, "berth_containers{state=\"created\"} 1")) << text;
  EXPECT_TRUE(has(text, "berth_shims 1")) << text;
  EXPECT_TRUE(has(text, "berth_shim_memory_bytes " + std::to_string(10 * page))) << text;
}

TEST_F(DaemonMetricsTest, ImagePullsAreCounted) {
  DaemonMetrics m;
  image::PullObserver* pulls = m.pullObserver();
  std::string text = m.registry().render();
  EXPECT_TRUE(has(text, "berth_image_pulls_total{result=\"failure\"} 0")) << text;
  EXPECT_TRUE(has(text, "berth_image_pull_bytes_total 0")) << text;
  pulls->blobBytes(1000);
  pulls->blobBytes(24);
  pulls->pullDone(true, absl::Milliseconds(300));
  pulls->pullDone(false, absl::Seconds(2));
  text = m.registry().render();
  EXPECT_TRUE(has(text, "berth_image_pull_bytes_total 1024")) << text;
  EXPECT_TRUE(has(text, "berth_image_pulls_total{result=\"success\"} 1")) << text;
  EXPECT_TRUE(has(text, "berth_image_pulls_total{result=\"failure\"} 1")) << text;
  EXPECT_TRUE(has(text, "berth_image_pull_duration_seconds_bucket{le=\"0.25\"} 0")) << text;
  EXPECT_TRUE(has(text, "berth_image_pull_duration_seconds_bucket{le=\"0.5\"} 1")) << text;
  EXPECT_TRUE(has(text, "berth_image_pull_duration_seconds_count 1")) << text;
}

TEST_F(DaemonMetricsTest, ServesOnlyWhenConfigured) {
  DaemonMetrics m;
  ASSERT_TRUE(m.serve("").ok());
  EXPECT_EQ(m.port(), 0);
  ASSERT_TRUE(m.serve("127.0.0.1:0").ok());
  EXPECT_GT(m.port(), 0);
  m.stopServing();
  EXPECT_EQ(m.port(), 0);
  EXPECT_EQ(m.serve("nonsense").code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsConfigTest, AddressIsOffByDefaultParsedAndValidated) {
  auto defaults = parseConfig("", "test");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->metrics.address, "");
  auto on = parseConfig("[metrics]\naddress = \"127.0.0.1:9101\"\n", "test");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->metrics.address, "127.0.0.1:9101");
  EXPECT_EQ(configToJson(*on)["metrics"]["address"], "127.0.0.1:9101");
  for (const char* bad : {"9101", "example.com:9101", "127.0.0.1:99999"}) {
    auto c = parseConfig(std::string("[metrics]\naddress = \"") + bad + "\"\n", "test");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("metrics.address"), std::string::npos) << c.status();
  }
  auto unknown = parseConfig("[metrics]\nport = 9101\n", "test");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("metrics.port"), std::string::npos);
  // The printed defaults document the table and read back.
  std::string printed = renderConfig(*on);
  EXPECT_NE(printed.find("[metrics]\n"), std::string::npos) << printed;
  auto again = parseConfig(printed, "printed");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->metrics.address, "127.0.0.1:9101");
}

}  // namespace
}  // namespace berth::daemon
