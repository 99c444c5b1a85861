// Metrics: the Prometheus endpoint of a berthd started with [metrics] address (RPC counters,
// errors by code, durations, pods, containers, shims, image pulls), and the CRI metrics RPCs
// (ListMetricDescriptors, ListPodSandboxMetrics, StreamPodSandboxMetrics) with a running pod.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "test_env.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;

// One HTTP/1.1 request to 127.0.0.1:port; the whole reply (status line, headers, body).
std::string http(uint16_t port, const std::string& method, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req =
        method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
      out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Sample values of a scrape by series ("name{labels}"), comments skipped.
std::map<std::string, double> parseSamples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

struct Scrape {
  std::string raw;
  std::map<std::string, double> samples;
  double at(const std::string& series) const {
    auto it = samples.find(series);
    if (it == samples.end()) {
      ADD_FAILURE() << "no series " << series << " in:\n" << raw;
      return -1;
    }
    return it->second;
  }
};

Scrape scrape(uint16_t port) {
  Scrape s;
  s.raw = http(port, "GET", "/metrics");
  EXPECT_EQ(s.raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << s.raw;
  EXPECT_NE(s.raw.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << s.raw;
  size_t body = s.raw.find("\r\n\r\n");
  s.samples = parseSamples(body == std::string::npos ? "" : s.raw.substr(body + 4));
  return s;
}

v1::PodSandboxConfig podConfig(Berthd& d, const std::string& name, v1::NamespaceMode network) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("metrics");
  c.mutable_metadata()->set_uid("uid-" + name);
  c.set_hostname(name);
  c.set_log_directory(d.dir() + "/logs/" + name);
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(network);
  return c;
}

v1::ContainerConfig sleeper(const std::string& name, const std::string& image) {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image(image);
  c.add_command("sleep");
  c.add_command("3600");
  c.set_log_path(name + ".log");
  return c;
}

TEST(MetricsTest, EndpointCountsRpcsErrorsPullsPodsContainersAndShims) {
  uint16_t port = freeLoopbackPort();
  ASSERT_GT(port, 0);
  Berthd d("[metrics]\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  ASSERT_TRUE(d.start()) << d.log();

  // Before anything ran: zero pods and containers, every state listed.
  Scrape before = scrape(port);
  EXPECT_EQ(before.at("berth_pods{state=\"ready\"}"), 0);
  EXPECT_EQ(before.at("berth_containers{state=\"running\"}"), 0);
  EXPECT_EQ(before.at("berth_shims"), 0);
  double versions_before = before.at("berth_cri_requests_total{method=\"Version\"}");

  for (int i = 0; i < 2; ++i) {
    v1::VersionResponse resp;
    auto ctx = Berthd::context();
    ASSERT_TRUE(d.runtime().Version(ctx.get(), v1::VersionRequest(), &resp).ok());
  }
  v1::ContainerStatusRequest missing_req;
  missing_req.set_container_id(std::string(64, 'f'));
  v1::ContainerStatusResponse missing_resp;
  auto ctx = Berthd::context();
  EXPECT_EQ(d.runtime().ContainerStatus(ctx.get(), missing_req, &missing_resp).error_code(),
            grpc::StatusCode::NOT_FOUND);

  std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  grpc::Status st = pullImage(d, busybox);
  ASSERT_TRUE(st.ok()) << st.error_message();
  v1::PodSandboxConfig pod_config = podConfig(d, "scraped", v1::NODE);
  std::string pod;
  st = runPod(d, pod_config, &pod);
  ASSERT_TRUE(st.ok()) << st.error_message() << d.log();
  std::string ctr;
  st = createContainer(d, pod, sleeper("sleeper", busybox), pod_config, &ctr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(startContainer(d, ctr).ok());

  Scrape s = scrape(port);
  EXPECT_EQ(s.at("berth_cri_requests_total{method=\"Version\"}"), versions_before + 2);
  EXPECT_EQ(s.at("berth_cri_request_errors_total{method=\"ContainerStatus\",code=\"NotFound\"}"),
            1);
  EXPECT_GE(s.at("berth_cri_requests_total{method=\"ContainerStatus\"}"), 1);
  EXPECT_EQ(s.samples.count("berth_cri_request_errors_total{method=\"Version\",code=\"NotFound\"}"),
            0u);
  // The histogram of RunPodSandbox: one call, in +Inf and _count alike, buckets cumulative.
  EXPECT_EQ(s.at("berth_cri_request_duration_seconds_count{method=\"RunPodSandbox\"}"), 1);
  EXPECT_EQ(s.at("berth_cri_request_duration_seconds_bucket{method=\"RunPodSandbox\",le=\"+Inf\"}"),
            1);
  EXPECT_GT(s.at("berth_cri_request_duration_seconds_sum{method=\"RunPodSandbox\"}"), 0);
  EXPECT_LE(
      s.at("berth_cri_request_duration_seconds_bucket{method=\"RunPodSandbox\",le=\"0.0005\"}"),
      s.at("berth_cri_request_duration_seconds_bucket{method=\"RunPodSandbox\",le=\"120\"}"));
  EXPECT_NE(s.raw.find("# TYPE berth_cri_request_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(s.raw.find("# TYPE berth_cri_requests_total counter\n"), std::string::npos);

  EXPECT_EQ(s.at("berth_image_pulls_total{result=\"success\"}"), 1);
  EXPECT_EQ(s.at("berth_image_pulls_total{result=\"failure\"}"), 0);
  EXPECT_GT(s.at("berth_image_pull_bytes_total"), 0);
  EXPECT_EQ(s.at("berth_image_pull_duration_seconds_count"), 1);

  EXPECT_EQ(s.at("berth_pods{state=\"ready\"}"), 1);
  EXPECT_EQ(s.at("berth_containers{state=\"running\"}"), 1);
  EXPECT_EQ(s.at("berth_shims"), 1);
  EXPECT_GT(s.at("berth_shim_memory_bytes"), 0);

  // Only GET /metrics is served.
  EXPECT_EQ(http(port, "GET", "/").rfind("HTTP/1.1 404 ", 0), 0u);
  EXPECT_EQ(http(port, "POST", "/metrics").rfind("HTTP/1.1 405 ", 0), 0u);

  ASSERT_TRUE(stopContainer(d, ctr, 0).ok());
  ASSERT_TRUE(stopPod(d, pod).ok());
  Scrape after = scrape(port);
  EXPECT_EQ(after.at("berth_containers{state=\"exited\"}"), 1);
  EXPECT_EQ(after.at("berth_containers{state=\"running\"}"), 0);
  EXPECT_EQ(after.at("berth_pods{state=\"not_ready\"}"), 1);
  ASSERT_TRUE(removeContainer(d, ctr).ok());
  ASSERT_TRUE(removePod(d, pod).ok());
  Scrape gone = scrape(port);
  EXPECT_EQ(gone.at("berth_containers{state=\"exited\"}"), 0);
  EXPECT_EQ(gone.at("berth_shims"), 0);

  // The endpoint goes away with the daemon.
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(http(port, "GET", "/metrics"), "");
}

// kubelet's every-second calls copy answers made when a record changed: status and list calls
// make none (each made answer parses a record's stored config and spec), a change makes its
// answer before the call that made the change returns.
TEST(MetricsTest, StatusAndListCallsParseNothing) {
  uint16_t port = freeLoopbackPort();
  ASSERT_GT(port, 0);
  Berthd d("[metrics]\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  v1::PodSandboxConfig pod_config = podConfig(d, "answers", v1::NODE);
  std::string pod;
  ASSERT_TRUE(runPod(d, pod_config, &pod).ok()) << d.log();
  std::vector<std::string> ctrs(2);
  for (size_t i = 0; i < ctrs.size(); ++i) {
    ASSERT_TRUE(
        createContainer(d, pod, sleeper("c" + std::to_string(i), busybox), pod_config, &ctrs[i])
            .ok());
    ASSERT_TRUE(startContainer(d, ctrs[i]).ok());
  }
  const std::string made = "berth_cri_answers_made_total";
  double before = scrape(port).at(made);
  EXPECT_GT(before, 0);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(podStatus(d, pod).status().state(), v1::SANDBOX_READY);
    for (const auto& c : ctrs) {
      EXPECT_EQ(containerStatus(d, c).status().state(), v1::CONTAINER_RUNNING);
    }
    auto ctx = Berthd::context();
    v1::ListPodSandboxResponse pods;
    ASSERT_TRUE(d.runtime().ListPodSandbox(ctx.get(), {}, &pods).ok());
    EXPECT_EQ(pods.items_size(), 1);
    ctx = Berthd::context();
    v1::ListContainersRequest by_pod;
    by_pod.mutable_filter()->set_pod_sandbox_id(pod);
    v1::ListContainersResponse listed;
    ASSERT_TRUE(d.runtime().ListContainers(ctx.get(), by_pod, &listed).ok());
    EXPECT_EQ(listed.containers_size(), 2);
  }
  EXPECT_EQ(scrape(port).at(made), before) << "a status or list call made an answer";
  EXPECT_EQ(podStatus(d, pod).containers_statuses_size(), 2);

  // A change is in the answers when its call returns.
  ASSERT_TRUE(stopContainer(d, ctrs[0], 0).ok());
  auto stopped = containerStatus(d, ctrs[0]).status();
  EXPECT_EQ(stopped.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(stopped.reason(), "Error");
  EXPECT_GT(scrape(port).at(made), before);
  ASSERT_TRUE(stopPod(d, pod).ok());
  EXPECT_EQ(podStatus(d, pod).status().state(), v1::SANDBOX_NOTREADY);
  ASSERT_TRUE(removePod(d, pod).ok());
  auto ctx = Berthd::context();
  v1::ListContainersResponse none;
  ASSERT_TRUE(d.runtime().ListContainers(ctx.get(), {}, &none).ok());
  EXPECT_EQ(none.containers_size(), 0);
}

TEST(MetricsTest, OffByDefault) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(d.log().find("serving Prometheus metrics"), std::string::npos);
}

// Label values of `m` by key, from its descriptor.
std::map<std::string, std::string> labelsOf(
    const v1::Metric& m, const std::map<std::string, v1::MetricDescriptor>& descs) {
  std::map<std::string, std::string> out;
  auto it = descs.find(m.name());
  if (it == descs.end()) {
    ADD_FAILURE() << "metric " << m.name() << " has no descriptor";
    return out;
  }
  EXPECT_EQ(m.label_values_size(), it->second.label_keys_size()) << m.DebugString();
  for (int i = 0; i < m.label_values_size() && i < it->second.label_keys_size(); ++i) {
    out[it->second.label_keys(i)] = m.label_values(i);
  }
  return out;
}

const v1::Metric* find(const google::protobuf::RepeatedPtrField<v1::Metric>& metrics,
                       const std::string& name) {
  for (const auto& m : metrics) {
    if (m.name() == name) return &m;
  }
  return nullptr;
}

TEST(MetricsTest, PodSandboxMetricsOfARunningPodAndContainer) {
  Berthd d("[cri]\nstats_collect_period_seconds = 1\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::map<std::string, v1::MetricDescriptor> descs;
  {
    v1::ListMetricDescriptorsResponse resp;
    auto ctx = Berthd::context();
    ASSERT_TRUE(d.runtime().ListMetricDescriptors(ctx.get(), {}, &resp).ok());
    for (const auto& desc : resp.descriptors()) descs[desc.name()] = desc;
  }
  for (const char* name :
       {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_memory_usage_bytes", "container_memory_rss", "container_processes",
        "container_fs_usage_bytes", "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total"}) {
    ASSERT_TRUE(descs.contains(name)) << name;
  }

  std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  v1::PodSandboxConfig pod_config = podConfig(d, "measured", v1::POD);
  std::string pod;
  grpc::Status st = runPod(d, pod_config, &pod);
  ASSERT_TRUE(st.ok()) << st.error_message() << d.log();
  std::string ctr;
  st = createContainer(d, pod, sleeper("app", busybox), pod_config, &ctr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(startContainer(d, ctr).ok());

  // The first call starts tracking; samples follow within a collection period.
  v1::PodSandboxMetrics pm;
  bool complete = false;
  for (int i = 0; i < 100 && !complete; ++i) {
    v1::ListPodSandboxMetricsResponse resp;
    auto ctx = Berthd::context();
    ASSERT_TRUE(d.runtime().ListPodSandboxMetrics(ctx.get(), {}, &resp).ok());
    ASSERT_EQ(resp.pod_metrics_size(), 1);
    pm = resp.pod_metrics(0);
    complete = find(pm.metrics(), "container_memory_working_set_bytes") != nullptr &&
               find(pm.metrics(), "container_network_receive_bytes_total") != nullptr &&
               pm.container_metrics_size() == 1 &&
               find(pm.container_metrics(0).metrics(), "container_memory_working_set_bytes") &&
               find(pm.container_metrics(0).metrics(), "container_fs_usage_bytes");
    if (!complete) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(complete) << pm.DebugString() << d.log();
  EXPECT_EQ(pm.pod_sandbox_id(), pod);

  // Pod level: the pod's id and name, no image; network counters of eth0.
  const v1::Metric* rx = find(pm.metrics(), "container_network_receive_bytes_total");
  auto rx_labels = labelsOf(*rx, descs);
  EXPECT_EQ(rx_labels["id"], pod);
  EXPECT_EQ(rx_labels["name"], "measured");
  EXPECT_EQ(rx_labels["image"], "");
  EXPECT_EQ(rx_labels["interface"], "eth0");
  EXPECT_EQ(rx->metric_type(), v1::COUNTER);
  EXPECT_GT(rx->timestamp(), 0);
  for (const auto& m : pm.metrics()) labelsOf(m, descs);

  // Container level: its id, name and image; memory in use, a process, a writable layer.
  const v1::ContainerMetrics& cm = pm.container_metrics(0);
  EXPECT_EQ(cm.container_id(), ctr);
  const v1::Metric* ws = find(cm.metrics(), "container_memory_working_set_bytes");
  auto ws_labels = labelsOf(*ws, descs);
  EXPECT_EQ(ws_labels["id"], ctr);
  EXPECT_EQ(ws_labels["name"], "app");
  EXPECT_EQ(ws_labels["image"], busybox);
  EXPECT_EQ(ws->metric_type(), v1::GAUGE);
  EXPECT_GT(ws->value().value(), 0u);
  const v1::Metric* procs = find(cm.metrics(), "container_processes");
  ASSERT_NE(procs, nullptr) << cm.DebugString();
  EXPECT_GE(procs->value().value(), 1u);
  const v1::Metric* cpu = find(cm.metrics(), "container_cpu_usage_seconds_total");
  ASSERT_NE(cpu, nullptr) << cm.DebugString();
  EXPECT_EQ(labelsOf(*cpu, descs)["cpu"], "total");
  for (const auto& m : cm.metrics()) labelsOf(m, descs);

  // The stream form sends the same pods.
  v1::StreamPodSandboxMetricsRequest sreq;
  auto sctx = Berthd::context();
  auto reader = d.runtime().StreamPodSandboxMetrics(sctx.get(), sreq);
  v1::StreamPodSandboxMetricsResponse batch;
  std::vector<std::string> streamed;
  while (reader->Read(&batch)) {
    for (const auto& p : batch.pod_sandbox_metrics()) streamed.push_back(p.pod_sandbox_id());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, std::vector<std::string>{pod});

  // A stopped pod is no longer reported.
  ASSERT_TRUE(stopContainer(d, ctr, 0).ok());
  ASSERT_TRUE(stopPod(d, pod).ok());
  v1::ListPodSandboxMetricsResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().ListPodSandboxMetrics(ctx.get(), {}, &resp).ok());
  EXPECT_EQ(resp.pod_metrics_size(), 0);
}

}  // namespace
}  // namespace berth::testing
