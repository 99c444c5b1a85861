// A berthd with one READY pod and the busybox image pulled, for integration tests of
// containers and what runs in them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "test_env.h"

namespace berth::testing {

// A berthd with one READY pod (host network unless told) whose logs go to <dir>/logs, and the busybox
// image pulled.
struct PodEnv {
  explicit PodEnv(const std::string& name, const std::string& extra_toml = "",
                  const std::string& handler = "", v1::NamespaceMode network = v1::NODE)
      : d(extra_toml) {
    if (!d.start()) {
      ADD_FAILURE() << d.log();
      return;
    }
    busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
    pull(busybox);
    config.mutable_metadata()->set_name(name);
    config.mutable_metadata()->set_namespace_("default");
    config.mutable_metadata()->set_uid("uid-" + name);
    config.set_hostname(name);
    config.set_log_directory(d.dir() + "/logs/" + name);
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(network);
    grpc::Status st = runPod(d, config, &pod, handler);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
  }

  void pull(const std::string& ref) {
    grpc::Status st = pullImage(d, ref);
    EXPECT_TRUE(st.ok()) << ref << ": " << st.error_message();
  }

  v1::ContainerConfig containerConfig(const std::string& name,
                                      std::vector<std::string> cmd = {"sleep", "3600"}) const {
    v1::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image(busybox);
    for (auto& a : cmd) c.add_command(a);
    c.set_log_path(name + "/0.log");
    (*c.mutable_labels())["app"] = name;
    (*c.mutable_annotations())["note"] = "container test";
    return c;
  }

  grpc::Status create(const v1::ContainerConfig& c, std::string* id) {
    return createContainer(d, pod, c, config, id);
  }

  grpc::Status start(const std::string& id) { return startContainer(d, id); }

  // Creates and starts; fails the test on error.
  std::string run(const v1::ContainerConfig& c) {
    std::string id;
    grpc::Status st = create(c, &id);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
    st = start(id);
    EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d.log();
    return id;
  }

  grpc::Status stop(const std::string& id, int64_t timeout) { return stopContainer(d, id, timeout); }

  grpc::Status remove(const std::string& id) { return removeContainer(d, id); }

  v1::ContainerStatusResponse status(const std::string& id, bool verbose = false) {
    return containerStatus(d, id, verbose);
  }

  // Waits (bounded) until the container has exited; returns its status.
  v1::ContainerStatus waitExited(const std::string& id, int seconds = 30) {
    for (int i = 0; i < seconds * 50; ++i) {
      auto s = status(id).status();
      if (s.state() == v1::CONTAINER_EXITED) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "container " << id << " did not exit\n" << d.log();
    return status(id).status();
  }

  grpc::Status exec(const std::string& id, std::vector<std::string> cmd, v1::ExecSyncResponse* out,
                    int64_t timeout = 0) {
    return execSync(d, id, cmd, out, timeout);
  }

  // stdout of a successful exec.
  std::string execOut(const std::string& id, std::vector<std::string> cmd) {
    v1::ExecSyncResponse r;
    grpc::Status st = exec(id, std::move(cmd), &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(r.exit_code(), 0) << r.stderr();
    return r.stdout();
  }

  std::vector<v1::Container> list(const v1::ContainerFilter* f = nullptr) {
    v1::ListContainersRequest req;
    if (f != nullptr) *req.mutable_filter() = *f;
    v1::ListContainersResponse resp;
    auto ctx = Berthd::context();
    EXPECT_TRUE(d.runtime().ListContainers(ctx.get(), req, &resp).ok());
    return {resp.containers().begin(), resp.containers().end()};
  }

  std::string logPath(const std::string& name) const { return config.log_directory() + "/" + name + "/0.log"; }

  Berthd d;
  std::string busybox;
  v1::PodSandboxConfig config;
  std::string pod;
};

}  // namespace berth::testing
