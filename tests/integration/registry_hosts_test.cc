// Issue 17, points 1 and 3: a registry host directory in containerd's format (a mirror known
// only from a hosts.toml, with a CA file for a TLS registry on loopback made here; edits take
// effect at the next pull; capabilities), and pinned images.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

// docker-registry over TLS on loopback, serving the test environment's registry storage, with
// a certificate for 127.0.0.1 from a CA made here.
class TlsRegistry {
 public:
  explicit TlsRegistry(const std::string& dir) : dir_(dir) {}
  ~TlsRegistry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool start() {
    std::filesystem::create_directories(dir_);
    const std::string d = dir_;
    const std::string script =
        "cd '" + d +
        "' && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj /CN=berth-test-ca && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile ext.cnf";
    if (std::system((script + " >openssl.log 2>&1").c_str()) != 0) return false;
    port_ = freeLoopbackPort();
    std::ofstream(d + "/registry.yml")
        << "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: \""
        << envDir() << "/registry\"\n  maintenance:\n    uploadpurging:\n      enabled: false\n"
        << "http:\n  addr: 127.0.0.1:" << port_ << "\n  secret: berth-test-not-a-secret\n"
        << "  tls:\n    certificate: " << d << "/server.pem\n    key: " << d << "/server.key\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setsid();
      std::freopen((d + "/registry.log").c_str(), "w", stdout);
      std::freopen((d + "/registry.log").c_str(), "a", stderr);
      ::execlp("docker-registry", "docker-registry", "serve", (d + "/registry.yml").c_str(),
               nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      const std::string probe = "curl -s -o /dev/null -w '%{http_code}' --cacert '" + d +
                                "/ca.pem' https://" + host() + "/v2/ | grep -q 200";
      if (std::system(probe.c_str()) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string ca() const { return dir_ + "/ca.pem"; }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// "127.0.0.1:PORT/berth-test/busybox:TAG" → "berth-test/busybox:TAG".
std::string pathOf(const std::string& ref) { return ref.substr(ref.find('/') + 1); }

TEST(RegistryHostsTest, MirrorOnlyInHostsTomlWithItsCaAndEditsTakeEffectAtTheNextPull) {
  Berthd probe;  // for a folder of this test's own, removed last
  struct RemovedAtEnd {
    std::string path;
    ~RemovedAtEnd() { std::filesystem::remove_all(path); }
  } base_dir{probe.dir() + "-hosts"};
  const std::string& base = base_dir.path;
  TlsRegistry tls(base + "/tls");
  ASSERT_TRUE(tls.start()) << "TLS registry did not start (see " << base << "/tls)";
  const std::string certs = base + "/certs.d";
  const std::string folder = certs + "/mirror.invalid";
  std::filesystem::create_directories(folder);
  std::filesystem::copy_file(tls.ca(), folder + "/ca.pem");
  auto hosts = [&](const std::string& mirror_keys) {
    std::ofstream(folder + "/hosts.toml")
        << "server = \"https://mirror.invalid\"\n\n[host.\"https://" << tls.host() << "\"]\n"
        << mirror_keys;
  };
  Berthd d("[image]\nconfig_path = \"" + certs + "\"\nretries = 0\n");
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  const std::string ref = "mirror.invalid/" + pathOf(busybox);

  // Without its CA the mirror's certificate is not trusted, and the upstream does not exist.
  hosts("  capabilities = [\"pull\", \"resolve\"]\n");
  grpc::Status st = pullImage(d, ref);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("https://" + tls.host()), std::string::npos)
      << st.error_message();
  // The same file with the CA, edited while berthd runs: the next pull goes through it.
  hosts("  capabilities = [\"pull\", \"resolve\"]\n  ca = \"ca.pem\"\n");
  st = pullImage(d, ref);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  EXPECT_EQ(imageStatus(d, ref).image().id(), envKey("BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"));

  // Capabilities: a mirror that may only pull serves digests, not tags.
  hosts("  capabilities = [\"pull\"]\n  ca = \"ca.pem\"\n");
  ASSERT_TRUE(removeImage(d, ref).ok());
  const std::string by_digest =
      ref.substr(0, ref.rfind(':')) + "@" + envKey("BERTH_TEST_IMAGE_BUSYBOX_DIGEST");
  st = pullImage(d, by_digest);
  EXPECT_TRUE(st.ok()) << st.error_message();
  st = pullImage(d, ref);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.error_message().find("https://" + tls.host()), std::string::npos)
      << "the tag is never asked of a pull-only mirror: " << st.error_message();

  // A broken hosts.toml is an error naming it, and berthd keeps serving.
  std::ofstream(folder + "/hosts.toml") << "skip_verify = \"no\"\n";
  st = pullImage(d, ref);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find(folder + "/hosts.toml: skip_verify: a boolean"),
            std::string::npos)
      << st.error_message();
  EXPECT_FALSE(listImages(d).empty());
}

TEST(RegistryHostsTest, PinnedImagesAreReportedPinned) {
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  const std::string foo = envKey("BERTH_TEST_IMAGE_USER_UID");  // another repository
  // A glob over the busybox repository (any tag), nothing for foo.
  const std::string glob = busybox.substr(0, busybox.rfind(':')) + ":*";
  Berthd d("[image]\npinned_images = [\"" + glob + "\", \"example.com/never:1\"]\n");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(pullImage(d, busybox).ok());
  ASSERT_TRUE(pullImage(d, foo).ok());
  EXPECT_TRUE(imageStatus(d, busybox).image().pinned());
  EXPECT_FALSE(imageStatus(d, foo).image().pinned());
  for (const auto& image : listImages(d)) {
    bool is_busybox = false;
    for (const auto& t : image.repo_tags()) is_busybox = is_busybox || t == busybox;
    EXPECT_EQ(image.pinned(), is_busybox) << image.id();
  }
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits until berthd's log has `text` (5 s).
bool logShows(const Berthd& d, const std::string& text) {
  for (int i = 0; i < 100; ++i) {
    if (occurrences(d.log(), text) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Issue 17, point 2: SIGHUP re-reads the file; what can change does, at once; keys that need
// a restart are named; a bad file keeps the running configuration and berthd serving.
TEST(ReloadTest, SighupAppliesLogLevelAndMirrorsAndABadFileChangesNothing) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  const std::string ref = "mirror.invalid/" + pathOf(busybox);
  ASSERT_FALSE(pullImage(d, ref).ok()) << "no such registry, and no mirror yet";
  imageStatus(d, busybox);
  ASSERT_TRUE(logShows(d, "ImageStatus ok")) << "debug: every call is logged";

  std::ifstream in(d.configPath());
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  const std::string debug = "level = \"debug\"";
  ASSERT_NE(config.find(debug), std::string::npos) << config;
  config.replace(config.find(debug), debug.size(), "level = \"info\"");
  config += "\n[image.registries.\"mirror.invalid\"]\nmirrors = [\"http://" +
            busybox.substr(0, busybox.find('/')) + "\"]\n";
  config += "[streaming]\ntoken_ttl_seconds = 7\n";
  config += "[cri.runtimes.added]\nruntime_path = \"runc\"\n";  // a handler to serve from now on
  config += "[metrics]\naddress = \"127.0.0.1:0\"\n";           // metrics turned on
  // A key that needs a restart: named, and keeps its running value.
  const std::string root_line = "root = \"" + d.root() + "\"";
  ASSERT_NE(config.find(root_line), std::string::npos) << config;
  config.replace(config.find(root_line), root_line.size(), "root = \"" + d.dir() + "/elsewhere\"");
  std::ofstream(d.configPath()) << config;
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(logShows(d, "reload: configuration applied")) << d.log();
  EXPECT_TRUE(logShows(d, "config key /root changed: it needs a restart")) << d.log();
  EXPECT_NE(d.log().find("/log/level"), std::string::npos);
  EXPECT_NE(d.log().find("/streaming/token_ttl_seconds"), std::string::npos);
  // Verbose Status shows the configuration in effect.
  v1::StatusRequest sreq;
  sreq.set_verbose(true);
  v1::StatusResponse sresp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().Status(ctx.get(), sreq, &sresp).ok());
  auto effective = nlohmann::json::parse(sresp.info().at("config"), nullptr, false);
  EXPECT_EQ(effective["streaming"]["token_ttl_seconds"], 7) << effective.dump();
  EXPECT_EQ(effective["log"]["level"], "info");
  EXPECT_EQ(effective["root"], d.root()) << "the running value";
  EXPECT_TRUE(effective["image"]["registries"].contains("mirror.invalid")) << effective.dump();
  auto sources = nlohmann::json::parse(sresp.info().at("configSources"), nullptr, false);
  EXPECT_EQ(sources["/cri/runtimes/added/runtime_path"], d.configPath()) << sources.dump();
  EXPECT_EQ(sources["/streaming/token_ttl_seconds"], d.configPath());
  // The added handler is listed and runs pods.
  bool listed = false;
  for (const auto& h : sresp.runtime_handlers()) listed = listed || h.name() == "added";
  EXPECT_TRUE(listed);
  EXPECT_TRUE(logShows(d, "reload: runtime handler added added")) << d.log();
  // Metrics are served from now on.
  ASSERT_TRUE(logShows(d, "serving Prometheus metrics on http://127.0.0.1:")) << d.log();
  {
    const std::string log = d.log();
    const std::string mark = "serving Prometheus metrics on http://";
    const size_t at = log.find(mark) + mark.size();
    const std::string url = "http://" + log.substr(at, log.find('/', at) - at) + "/metrics";
    RunResult got = runProgram({"curl", "-sf", url});
    EXPECT_EQ(got.exit_code, 0) << url;
    EXPECT_NE(got.out.find("berth_cri_requests_total"), std::string::npos);
  }
  std::string pod;
  ASSERT_TRUE(runPod(d, hostNetworkPod("on-added"), &pod, "added").ok()) << d.log();
  EXPECT_EQ(podStatus(d, pod).status().runtime_handler(), "added");
  EXPECT_TRUE(stopPod(d, pod).ok());
  EXPECT_TRUE(removePod(d, pod).ok());

  grpc::Status st = pullImage(d, ref);
  EXPECT_TRUE(st.ok()) << "the mirror from the reloaded file: " << st.error_message();
  const size_t logged = occurrences(d.log(), "ImageStatus ok");
  imageStatus(d, busybox);
  imageStatus(d, busybox);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(occurrences(d.log(), "ImageStatus ok"), logged) << "info: calls are not logged";
  EXPECT_FALSE(std::filesystem::exists(d.dir() + "/elsewhere")) << "root is not moved";

  // A bad file: the running configuration stays, naming the key; berthd keeps serving.
  std::ofstream(d.configPath()) << config << "\n[image]\nretries = \"many\"\n";
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(logShows(d, "SIGHUP: keeping the running configuration")) << d.log();
  EXPECT_NE(d.log().find("image.retries"), std::string::npos) << d.log();
  EXPECT_TRUE(pullImage(d, ref).ok()) << "the mirror is still configured";
  EXPECT_TRUE(imageStatus(d, ref).has_image());
}

}  // namespace
}  // namespace berth::testing
