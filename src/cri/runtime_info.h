// Version, Status, RuntimeConfig and UpdateRuntimeConfig: what the runtime is, whether it is
// ready, and the node's pod CIDR.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/v1/api.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// A readiness condition as Status reports it.
struct Condition {
  bool ready = false;
  std::string reason;   // set when not ready
  std::string message;  // set when not ready
};

// A runtime handler and the features RuntimeStatus reports for it.
struct HandlerInfo {
  std::string name;
  bool recursive_read_only = false;
  bool user_namespaces = false;
};

struct RuntimeInfoOptions {
  std::string config_json;            // effective configuration, shown in verbose Status
  std::string config_sources_json;    // where each of its values came from (verbose Status)
  std::vector<HandlerInfo> handlers;  // configured runtime handlers
  std::string default_handler;
  std::function<Condition()> runtime_ready;  // must answer from memory
  std::function<Condition()> network_ready;  // must answer from memory
  // Applies the node's pod CIDRs (UpdateRuntimeConfig); true when the built-in network uses
  // them, false when a CNI config of the administrator's is in use.
  std::function<absl::StatusOr<bool>(const std::vector<std::string>&)> set_pod_cidrs;
};

// Thread-safe: immutable after construction but for the configuration shown (a reload).
class RuntimeInfo {
 public:
  explicit RuntimeInfo(RuntimeInfoOptions options)
      : options_(std::move(options)),
        config_json_(std::make_shared<const std::pair<std::string, std::string>>(
            options_.config_json, options_.config_sources_json)) {}

  // A runtime handler added while berthd runs (SIGHUP).
  void addHandler(HandlerInfo h) {
    absl::MutexLock lock(&mu_);
    added_.push_back(std::move(h));
  }

  // The effective configuration and its sources after a reload (SIGHUP).
  void setConfigJson(std::string json, std::string sources_json) {
    auto next = std::make_shared<const std::pair<std::string, std::string>>(
        std::move(json), std::move(sources_json));
    absl::MutexLock lock(&mu_);
    config_json_ = std::move(next);
  }

  [[nodiscard]] absl::Status version(const v1::VersionRequest& req,
                                     v1::VersionResponse* resp) const;
  [[nodiscard]] absl::Status status(const v1::StatusRequest& req, v1::StatusResponse* resp) const;
  [[nodiscard]] absl::Status runtimeConfig(const v1::RuntimeConfigRequest& req,
                                           v1::RuntimeConfigResponse* resp) const;
  // Only the pod CIDR is taken from the request, as containerd does: an empty one changes
  // nothing; otherwise the built-in network adopts it.
  [[nodiscard]] absl::Status updateRuntimeConfig(const v1::UpdateRuntimeConfigRequest& req,
                                                 v1::UpdateRuntimeConfigResponse* resp) const;

 private:
  RuntimeInfoOptions options_;
  mutable absl::Mutex mu_;
  // The configuration shown and where its values came from.
  std::shared_ptr<const std::pair<std::string, std::string>> config_json_ ABSL_GUARDED_BY(mu_);
  std::vector<HandlerInfo> added_ ABSL_GUARDED_BY(mu_);  // handlers added by reloads
};

}  // namespace berth::cri
