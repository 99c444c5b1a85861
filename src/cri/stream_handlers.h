// Exec, Attach and PortForward: the RPCs check the request and hand out a streaming URL; the
// streaming server then calls back here (as its Backend) when the client connects.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "container/container_manager.h"
#include "runtime/v1/api.h"
#include "store/store.h"
#include "streaming/server.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

class StreamHandlers : public streaming::Backend {
 public:
  StreamHandlers(store::Store& store, container::ContainerManager& containers)
      : store_(store), containers_(containers) {}
  // Set once the streaming server exists (it needs this object as its backend).
  void setServer(streaming::Server* server) { server_ = server; }

  [[nodiscard]] absl::Status exec(const v1::ExecRequest& req, v1::ExecResponse* resp);
  [[nodiscard]] absl::Status attach(const v1::AttachRequest& req, v1::AttachResponse* resp);
  [[nodiscard]] absl::Status portForward(const v1::PortForwardRequest& req,
                                         v1::PortForwardResponse* resp);

  // streaming::Backend.
  absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> exec(
      const streaming::ExecParams& p) override;
  absl::StatusOr<std::unique_ptr<shim::Attachment>> attach(
      const streaming::AttachParams& p) override;
  void attachStdinEnded(const streaming::AttachParams& p) override;
  absl::StatusOr<UniqueFd> dialPort(const std::string& sandbox_id, int32_t port) override;

 private:
  // The full id of a running container (FailedPrecondition naming its state otherwise).
  [[nodiscard]] absl::StatusOr<std::string> runningContainer(const char* rpc,
                                                             const std::string& id) const;
  [[nodiscard]] absl::StatusOr<std::string> url(streaming::StreamRequest req) const;

  store::Store& store_;
  container::ContainerManager& containers_;
  streaming::Server* server_ = nullptr;
};

// Connects to 127.0.0.1:port (then [::1]:port) inside the network namespace at `netns_path`
// ("" for the host's), from a short-lived thread that enters it.
[[nodiscard]] absl::StatusOr<UniqueFd> dialInNetns(const std::string& netns_path, int32_t port);

}  // namespace berth::cri
