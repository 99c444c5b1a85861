// One-line CRI calls for integration tests.
#include "cri_calls.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "nlohmann/json.hpp"

namespace berth::testing {

grpc::Status pullImage(Berthd& d, const std::string& ref) {
  v1::PullImageRequest req;
  req.mutable_image()->set_image(ref);
  v1::PullImageResponse resp;
  auto ctx = Berthd::context(120);
  return d.image().PullImage(ctx.get(), req, &resp);
}

v1::ImageStatusResponse imageStatus(Berthd& d, const std::string& ref, bool verbose) {
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image(ref);
  req.set_verbose(verbose);
  v1::ImageStatusResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.image().ImageStatus(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << ref << ": " << st.error_message();
  return resp;
}

std::vector<v1::Image> listImages(Berthd& d) {
  v1::ListImagesResponse resp;
  auto ctx = Berthd::context();
  EXPECT_TRUE(d.image().ListImages(ctx.get(), {}, &resp).ok());
  return {resp.images().begin(), resp.images().end()};
}

grpc::Status removeImage(Berthd& d, const std::string& ref) {
  v1::RemoveImageRequest req;
  req.mutable_image()->set_image(ref);
  v1::RemoveImageResponse resp;
  auto ctx = Berthd::context();
  return d.image().RemoveImage(ctx.get(), req, &resp);
}

v1::PodSandboxConfig hostNetworkPod(const std::string& name) {
  v1::PodSandboxConfig pc;
  pc.mutable_metadata()->set_name(name);
  pc.mutable_metadata()->set_namespace_("default");
  pc.mutable_metadata()->set_uid("uid-" + name);
  pc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  return pc;
}

v1::ContainerConfig sleepContainer(const std::string& name, const std::string& image) {
  v1::ContainerConfig cc;
  cc.mutable_metadata()->set_name(name);
  cc.mutable_image()->set_image(image);
  cc.add_command("sleep");
  cc.add_command("3600");
  return cc;
}

grpc::Status runPod(Berthd& d, const v1::PodSandboxConfig& c, std::string* id,
                    const std::string& handler) {
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = c;
  req.set_runtime_handler(handler);
  v1::RunPodSandboxResponse resp;
  auto ctx = Berthd::context(120);
  grpc::Status st = d.runtime().RunPodSandbox(ctx.get(), req, &resp);
  *id = resp.pod_sandbox_id();
  return st;
}

v1::PodSandboxStatusResponse podStatus(Berthd& d, const std::string& id, bool verbose) {
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(verbose);
  v1::PodSandboxStatusResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.runtime().PodSandboxStatus(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp;
}

grpc::Status stopPod(Berthd& d, const std::string& id) {
  v1::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse resp;
  auto ctx = Berthd::context(120);
  return d.runtime().StopPodSandbox(ctx.get(), req, &resp);
}

grpc::Status removePod(Berthd& d, const std::string& id) {
  v1::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse resp;
  auto ctx = Berthd::context(120);
  return d.runtime().RemovePodSandbox(ctx.get(), req, &resp);
}

grpc::Status createContainer(Berthd& d, const std::string& pod, const v1::ContainerConfig& c,
                             const v1::PodSandboxConfig& pod_config, std::string* id) {
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod);
  *req.mutable_config() = c;
  *req.mutable_sandbox_config() = pod_config;
  v1::CreateContainerResponse resp;
  auto ctx = Berthd::context(60);
  grpc::Status st = d.runtime().CreateContainer(ctx.get(), req, &resp);
  *id = resp.container_id();
  return st;
}

grpc::Status startContainer(Berthd& d, const std::string& id) {
  v1::StartContainerRequest req;
  req.set_container_id(id);
  v1::StartContainerResponse resp;
  auto ctx = Berthd::context(60);
  return d.runtime().StartContainer(ctx.get(), req, &resp);
}

grpc::Status stopContainer(Berthd& d, const std::string& id, int64_t timeout) {
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout);
  v1::StopContainerResponse resp;
  auto ctx = Berthd::context(60);
  return d.runtime().StopContainer(ctx.get(), req, &resp);
}

grpc::Status removeContainer(Berthd& d, const std::string& id) {
  v1::RemoveContainerRequest req;
  req.set_container_id(id);
  v1::RemoveContainerResponse resp;
  auto ctx = Berthd::context(60);
  return d.runtime().RemoveContainer(ctx.get(), req, &resp);
}

v1::ContainerStatusResponse containerStatus(Berthd& d, const std::string& id, bool verbose) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(verbose);
  v1::ContainerStatusResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.runtime().ContainerStatus(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp;
}

grpc::Status execSync(Berthd& d, const std::string& id, const std::vector<std::string>& cmd,
                      v1::ExecSyncResponse* out, int64_t timeout) {
  v1::ExecSyncRequest req;
  req.set_container_id(id);
  for (const auto& a : cmd) req.add_cmd(a);
  req.set_timeout(timeout);
  auto ctx = Berthd::context(60);
  return d.runtime().ExecSync(ctx.get(), req, out);
}

std::string execUrl(Berthd& d, const std::string& id, const std::vector<std::string>& cmd,
                    bool stdin, bool stdout, bool stderr, bool tty, grpc::Status* st) {
  v1::ExecRequest req;
  req.set_container_id(id);
  for (const auto& a : cmd) req.add_cmd(a);
  req.set_stdin(stdin);
  req.set_stdout(stdout);
  req.set_stderr(stderr);
  req.set_tty(tty);
  v1::ExecResponse resp;
  auto ctx = Berthd::context(10);
  grpc::Status s = d.runtime().Exec(ctx.get(), req, &resp);
  if (st != nullptr) *st = s;
  if (st == nullptr) {
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  return resp.url();
}

std::string attachUrl(Berthd& d, const std::string& id, bool stdin, bool stdout, bool stderr,
                      bool tty) {
  v1::AttachRequest req;
  req.set_container_id(id);
  req.set_stdin(stdin);
  req.set_stdout(stdout);
  req.set_stderr(stderr);
  req.set_tty(tty);
  v1::AttachResponse resp;
  auto ctx = Berthd::context(10);
  grpc::Status s = d.runtime().Attach(ctx.get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.url();
}

grpc::Status checkpointContainer(Berthd& d, const std::string& id, const std::string& location) {
  v1::CheckpointContainerRequest req;
  req.set_container_id(id);
  req.set_location(location);
  req.set_timeout(60);
  v1::CheckpointContainerResponse resp;
  auto ctx = Berthd::context(90);
  return d.runtime().CheckpointContainer(ctx.get(), req, &resp);
}

int pidInInfo(const google::protobuf::Map<std::string, std::string>& info) {
  auto it = info.find("info");
  if (it == info.end()) return 0;
  return nlohmann::json::parse(it->second).value("pid", 0);
}

bool criuWorks() { return std::system("criu check >/dev/null 2>&1") == 0; }

}  // namespace berth::testing
