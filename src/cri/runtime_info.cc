// Runtime identity and readiness, answered from memory.
#include "cri/runtime_info.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/build_info.h"
#include "common/logging.h"

namespace berth::cri {
namespace {

// The CRI API version this server speaks (kubelet reads it as the `version` field).
constexpr const char* kKubeletApiVersion = "0.1.0";

void addCondition(v1::RuntimeStatus* status, const std::string& type, const Condition& c) {
  auto* cond = status->add_conditions();
  cond->set_type(type);
  cond->set_status(c.ready);
  if (!c.ready) {
    cond->set_reason(c.reason);
    cond->set_message(c.message);
  }
}

}  // namespace

absl::Status RuntimeInfo::version(const v1::VersionRequest& /*req*/,
                                  v1::VersionResponse* resp) const {
  resp->set_version(kKubeletApiVersion);
  resp->set_runtime_name(kRuntimeName);
  resp->set_runtime_version(kVersion);
  resp->set_runtime_api_version(kCriApiVersion);
  return absl::OkStatus();
}

absl::Status RuntimeInfo::status(const v1::StatusRequest& req, v1::StatusResponse* resp) const {
  auto* status = resp->mutable_status();
  addCondition(status, "RuntimeReady", options_.runtime_ready());
  addCondition(status, "NetworkReady", options_.network_ready());
  // The default handler is also listed under the empty name, which is what kubelet sends.
  auto add = [resp](const std::string& name, const HandlerInfo& info) {
    auto* h = resp->add_runtime_handlers();
    h->set_name(name);
    h->mutable_features()->set_recursive_read_only_mounts(info.recursive_read_only);
    h->mutable_features()->set_user_namespaces(info.user_namespaces);
  };
  for (const HandlerInfo& h : options_.handlers) {
    if (h.name == options_.default_handler) add("", h);
  }
  for (const HandlerInfo& h : options_.handlers) add(h.name, h);
  {
    absl::MutexLock lock(&mu_);
    for (const HandlerInfo& h : added_) add(h.name, h);
  }
  // supplemental_groups_policy Strict is applied (oci/user.cc).
  resp->mutable_features()->set_supplemental_groups_policy(true);
  if (req.verbose()) {
    std::shared_ptr<const std::pair<std::string, std::string>> config;
    {
      absl::MutexLock lock(&mu_);
      config = config_json_;
    }
    (*resp->mutable_info())["config"] = config->first;
    if (!config->second.empty()) (*resp->mutable_info())["configSources"] = config->second;
  }
  return absl::OkStatus();
}

absl::Status RuntimeInfo::runtimeConfig(const v1::RuntimeConfigRequest& /*req*/,
                                        v1::RuntimeConfigResponse* resp) const {
  resp->mutable_linux()->set_cgroup_driver(v1::CgroupDriver::CGROUPFS);
  return absl::OkStatus();
}

absl::Status RuntimeInfo::updateRuntimeConfig(const v1::UpdateRuntimeConfigRequest& req,
                                              v1::UpdateRuntimeConfigResponse* /*resp*/) const {
  const std::string& text = req.runtime_config().network_config().pod_cidr();
  if (text.empty()) return absl::OkStatus();  // nothing else in it is for the runtime
  std::vector<std::string> cidrs;
  for (absl::string_view c : absl::StrSplit(text, ',')) {
    c = absl::StripAsciiWhitespace(c);
    if (!c.empty()) cidrs.emplace_back(c);
  }
  if (!options_.set_pod_cidrs) {
    return absl::FailedPreconditionError("UpdateRuntimeConfig: pod networking is not set up");
  }
  absl::StatusOr<bool> used = options_.set_pod_cidrs(cidrs);
  if (!used.ok()) {
    return absl::Status(used.status().code(),
                        absl::StrCat("UpdateRuntimeConfig: pod_cidr: ", used.status().message()));
  }
  auto log = logging::get("cri");
  if (*used) {
    log->info("pod CIDR {}: the built-in network uses it", text);
  } else {
    log->info("pod CIDR {}: kept for the built-in network; a CNI config from the config "
              "directory is in use",
              text);
  }
  return absl::OkStatus();
}

}  // namespace berth::cri
