// One-line CRI calls for integration tests, with the deadlines these operations need.
// Functions returning a status leave checking it to the test; the others EXPECT success.
#pragma once

#include <string>
#include <vector>

#include "berthd_fixture.h"

namespace berth::testing {

namespace v1 = runtime::v1;

grpc::Status pullImage(Berthd& d, const std::string& ref);
v1::ImageStatusResponse imageStatus(Berthd& d, const std::string& ref, bool verbose = false);
std::vector<v1::Image> listImages(Berthd& d);
grpc::Status removeImage(Berthd& d, const std::string& ref);

// A host-network pod's config: name, namespace "default", uid "uid-<name>".
v1::PodSandboxConfig hostNetworkPod(const std::string& name);
grpc::Status runPod(Berthd& d, const v1::PodSandboxConfig& c, std::string* id,
                    const std::string& handler = "");
v1::PodSandboxStatusResponse podStatus(Berthd& d, const std::string& id, bool verbose = false);
grpc::Status stopPod(Berthd& d, const std::string& id);
grpc::Status removePod(Berthd& d, const std::string& id);

// A container config named `name` that runs `sleep 3600` from `image`.
v1::ContainerConfig sleepContainer(const std::string& name, const std::string& image);
grpc::Status createContainer(Berthd& d, const std::string& pod, const v1::ContainerConfig& c,
                             const v1::PodSandboxConfig& pod_config, std::string* id);
grpc::Status startContainer(Berthd& d, const std::string& id);
grpc::Status stopContainer(Berthd& d, const std::string& id, int64_t timeout);
grpc::Status removeContainer(Berthd& d, const std::string& id);
v1::ContainerStatusResponse containerStatus(Berthd& d, const std::string& id, bool verbose = false);
// The streaming URLs of Exec and Attach (failing the test on error, unless `st` takes it).
std::string execUrl(Berthd& d, const std::string& id, const std::vector<std::string>& cmd,
                    bool stdin, bool stdout, bool stderr, bool tty, grpc::Status* st = nullptr);
std::string attachUrl(Berthd& d, const std::string& id, bool stdin, bool stdout, bool stderr,
                      bool tty);
// The "pid" of a verbose status's info JSON (a pod's pause, a container's init); 0 without.
int pidInInfo(const google::protobuf::Map<std::string, std::string>& info);
// CheckpointContainer (90 s).
grpc::Status checkpointContainer(Berthd& d, const std::string& id, const std::string& location);
// Whether `criu check` passes on this host (Debian 12's CRIU 3.17.1 fails on Linux >= 6.13).
bool criuWorks();
grpc::Status execSync(Berthd& d, const std::string& id, const std::vector<std::string>& cmd,
                      v1::ExecSyncResponse* out, int64_t timeout = 0);

}  // namespace berth::testing
