// Container latency against any CRI endpoint, in one host-network pod: CreateContainer,
// StartContainer, ContainerStatus, StopContainer and RemoveContainer over N containers;
// ListContainers with 500 containers of which half have exited; ExecSync of /bin/true. The
// image must hold /bin/sh, sleep and /bin/true (busybox does). Whatever the tool made is
// removed at the end, also after failures and on SIGINT or SIGTERM.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "latency.h"
#include "streaming/client.h"

namespace {

namespace v1 = runtime::v1;
using berth::bench::check;
using berth::bench::interrupted;
using berth::bench::measure;
using berth::bench::printSummary;

// The pod and the containers of one run; the destructor removes what is left of them.
class Workload {
 public:
  Workload(const berth::cli::GlobalOptions& options, std::string image)
      : client_(options), image_(std::move(image)) {
    std::string name = absl::StrCat("bench-ctr-", ::getpid());
    auto* m = pod_.mutable_metadata();
    m->set_name(name);
    m->set_namespace_("bench");
    m->set_uid(name);
    pod_.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        v1::NODE);
  }
  ~Workload() {
    if (!cleaned_) cleanUp();
  }

  bool pull() {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image_);
    *req.mutable_sandbox_config() = pod_;
    v1::PullImageResponse resp;
    grpc::ClientContext ctx;  // as long as the pull takes
    return check("PullImage", client_.image().PullImage(&ctx, req, &resp));
  }

  bool runPod() {
    pod_id_ = berth::bench::runPod(client_, pod_);
    return !pod_id_.empty();
  }

  std::optional<std::string> create(const std::string& name, std::vector<std::string> command) {
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id_);
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(image_);
    for (auto& arg : command) c->add_command(std::move(arg));
    c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        v1::NODE);
    *req.mutable_sandbox_config() = pod_;
    v1::CreateContainerResponse resp;
    auto ctx = client_.context();
    if (!check("CreateContainer", client_.runtime().CreateContainer(ctx.get(), req, &resp))) {
      return std::nullopt;
    }
    containers_.insert(resp.container_id());
    return resp.container_id();
  }

  bool start(const std::string& id) {
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    auto ctx = client_.context();
    return check("StartContainer", client_.runtime().StartContainer(ctx.get(), req, &resp));
  }

  bool status(const std::string& id) {
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    v1::ContainerStatusResponse resp;
    auto ctx = client_.context();
    return check("ContainerStatus", client_.runtime().ContainerStatus(ctx.get(), req, &resp));
  }

  // Timeout 0: SIGKILL at once (sleep as pid 1 ignores SIGTERM).
  bool stop(const std::string& id) {
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(0);
    v1::StopContainerResponse resp;
    auto ctx = client_.context();
    return check("StopContainer", client_.runtime().StopContainer(ctx.get(), req, &resp));
  }

  bool remove(const std::string& id) {
    v1::RemoveContainerRequest req;
    req.set_container_id(id);
    v1::RemoveContainerResponse resp;
    auto ctx = client_.context();
    if (!check("RemoveContainer", client_.runtime().RemoveContainer(ctx.get(), req, &resp))) {
      return false;
    }
    containers_.erase(id);
    return true;
  }

  // The ids of this pod's containers in `state`.
  std::optional<std::set<std::string>> listed(v1::ContainerState state) {
    v1::ListContainersRequest req;
    req.mutable_filter()->set_pod_sandbox_id(pod_id_);
    req.mutable_filter()->mutable_state()->set_state(state);
    v1::ListContainersResponse resp;
    auto ctx = client_.context();
    if (!check("ListContainers", client_.runtime().ListContainers(ctx.get(), req, &resp))) {
      return std::nullopt;
    }
    std::set<std::string> ids;
    for (const auto& c : resp.containers()) ids.insert(c.id());
    return ids;
  }

  bool list() {
    v1::ListContainersResponse resp;
    auto ctx = client_.context();
    return check("ListContainers", client_.runtime().ListContainers(ctx.get(), {}, &resp));
  }

  bool execTrue(const std::string& id) {
    v1::ExecSyncRequest req;
    req.set_container_id(id);
    req.add_cmd("/bin/true");
    req.set_timeout(10);
    v1::ExecSyncResponse resp;
    auto ctx = client_.context();
    if (!check("ExecSync", client_.runtime().ExecSync(ctx.get(), req, &resp))) return false;
    if (resp.exit_code() != 0 && !exec_failed_) {
      std::fprintf(stderr, "/bin/true exited %d: %s\n", resp.exit_code(), resp.stderr().c_str());
      exec_failed_ = true;
    }
    return resp.exit_code() == 0;
  }

  // Exec of /bin/true through the streaming server: the Exec call, the SPDY session, the exit.
  bool execStreamTrue(const std::string& id) {
    v1::ExecRequest req;
    req.set_container_id(id);
    req.add_cmd("/bin/true");
    req.set_stdout(true);
    v1::ExecResponse resp;
    auto ctx = client_.context();
    if (!check("Exec", client_.runtime().Exec(ctx.get(), req, &resp))) return false;
    auto session = berth::streaming::CommandClient::connect(
        resp.url(), {.stdin = false, .stdout = true, .stderr = false});
    if (!session.ok()) {
      std::fprintf(stderr, "exec session: %s\n", session.status().ToString().c_str());
      return false;
    }
    auto r = (*session)->run([](int, std::string_view) {});
    return r.ok() && r->exit_code == 0;
  }

  // Removes every container still here, then the pod; false if anything stayed behind.
  bool cleanUp() {
    cleaned_ = true;
    bool clean = true;
    for (const std::string& id : std::set<std::string>(containers_)) {
      stop(id);  // failing is fine: it may have exited, RemoveContainer decides
      clean = remove(id) && clean;
    }
    if (!pod_id_.empty()) {
      v1::RemovePodSandboxRequest req;
      req.set_pod_sandbox_id(pod_id_);
      v1::RemovePodSandboxResponse resp;
      auto ctx = client_.context();
      if (check("RemovePodSandbox", client_.runtime().RemovePodSandbox(ctx.get(), req, &resp))) {
        pod_id_.clear();
      } else {
        std::fprintf(stderr, "pod %s was not removed\n", pod_id_.c_str());
        clean = false;
      }
    }
    if (!containers_.empty()) {
      std::fprintf(stderr, "%zu containers were not removed\n", containers_.size());
    }
    return clean;
  }

 private:
  berth::cli::Client client_;
  std::string image_;
  v1::PodSandboxConfig pod_;
  std::string pod_id_;
  std::set<std::string> containers_;  // created and not yet removed
  bool cleaned_ = false;
  bool exec_failed_ = false;  // reported once
};

// Create, start, status, stop, remove over n `sleep 3600` containers.
bool lifecycle(Workload& w, int n) {
  std::vector<std::string> ids;
  int k = 0;
  printSummary(measure("CreateContainer", 0, n, [&] {
    if (interrupted()) return false;
    auto id = w.create(absl::StrCat("lat-", k++), {"sleep", "3600"});
    if (id) ids.push_back(*id);
    return id.has_value();
  }));
  if (ids.empty() || interrupted()) return false;
  auto each = [&](const char* name, bool (Workload::*op)(const std::string&)) {
    if (interrupted()) return;
    size_t i = 0;
    printSummary(measure(name, 0, static_cast<int>(ids.size()), [&] {
      return !interrupted() && (w.*op)(ids[i++]);
    }));
  };
  each("StartContainer", &Workload::start);
  each("ContainerStatus", &Workload::status);
  each("StopContainer", &Workload::stop);
  each("RemoveContainer", &Workload::remove);
  return !interrupted();
}

// `total` containers, half of them exiting at once; ListContainers once the exits show, then
// ExecSync in one that runs.
bool listAndExec(Workload& w, int total) {
  std::set<std::string> exiting;
  std::vector<std::string> running;
  for (int k = 0; k < total && !interrupted(); ++k) {
    bool exits = k % 2 == 0;
    auto id = w.create(absl::StrCat("list-", k),
                       exits ? std::vector<std::string>{"sh", "-c", "exit 0"}
                             : std::vector<std::string>{"sleep", "3600"});
    if (!id || !w.start(*id)) return false;
    if (exits) {
      exiting.insert(*id);
    } else {
      running.push_back(*id);
    }
  }
  if (interrupted()) return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  for (;;) {
    auto exited = w.listed(v1::CONTAINER_EXITED);
    if (!exited) return false;
    size_t seen = 0;
    for (const auto& id : exiting) seen += exited->count(id);
    if (seen == exiting.size()) break;
    if (interrupted()) return false;
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "only %zu of %zu containers exited within 2 minutes; measuring anyway\n",
                   seen, exiting.size());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  printSummary(measure(absl::StrCat("ListContainers (", total, ")"), 10, 1000,
                       [&] { return !interrupted() && w.list(); }));
  if (running.empty()) return true;
  printSummary(measure("ExecSync /bin/true", 5, 200,
                       [&] { return !interrupted() && w.execTrue(running.front()); }));
  printSummary(measure("Exec /bin/true (SPDY session)", 5, 200,
                       [&] { return !interrupted() && w.execStreamTrue(running.front()); }));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"container_latency: p50/p99 of the container RPCs"};
  berth::cli::GlobalOptions options;
  options.timeout_seconds = 60;
  int containers = 100;
  int list_containers = 500;
  std::string image;
  app.add_option("-r,--runtime-endpoint", options.endpoint, "CRI endpoint")->capture_default_str();
  app.add_option("-n,--containers", containers, "containers for the lifecycle calls")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--list-containers", list_containers, "containers present for ListContainers")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--image", image, "image with /bin/sh, sleep and /bin/true (e.g. busybox)")
      ->required();
  CLI11_PARSE(app, argc, argv);

  berth::bench::catchInterrupts();

  std::printf("endpoint %s, image %s, %d containers, ListContainers with %d\n",
              options.endpoint.c_str(), image.c_str(), containers, list_containers);
  std::fflush(stdout);
  bool ok = false;
  bool clean = false;
  try {
    Workload w(options, image);
    ok = w.pull() && w.runPod() && lifecycle(w, containers) && listAndExec(w, list_containers);
    clean = w.cleanUp();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "container_latency: %s\n", e.what());
  }
  if (interrupted()) std::fprintf(stderr, "interrupted\n");
  return ok && clean && !interrupted() ? 0 : 1;
}
