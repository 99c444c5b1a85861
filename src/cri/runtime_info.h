// Version, Status and RuntimeConfig: what the runtime is and whether it is ready.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/v1/api.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// A readiness condition as Status reports it.
struct Condition {
  bool ready = false;
  std::string reason;   // set when not ready
  std::string message;  // set when not ready
};

struct RuntimeInfoOptions {
  std::string config_json;                 // effective configuration, shown in verbose Status
  std::vector<std::string> handler_names;  // configured runtime handlers
  std::string default_handler;
  std::function<Condition()> runtime_ready;  // must answer from memory
  std::function<Condition()> network_ready;  // must answer from memory
};

// Thread-safe: immutable after construction.
class RuntimeInfo {
 public:
  explicit RuntimeInfo(RuntimeInfoOptions options) : options_(std::move(options)) {}

  [[nodiscard]] absl::Status version(const v1::VersionRequest& req,
                                     v1::VersionResponse* resp) const;
  [[nodiscard]] absl::Status status(const v1::StatusRequest& req, v1::StatusResponse* resp) const;
  [[nodiscard]] absl::Status runtimeConfig(const v1::RuntimeConfigRequest& req,
                                           v1::RuntimeConfigResponse* resp) const;

 private:
  RuntimeInfoOptions options_;
};

}  // namespace berth::cri
