#include "sandbox/runtime_features.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/spawn.h"
#include "nlohmann/json.hpp"

namespace berth::sandbox {
namespace {

constexpr int kProbeTimeoutMs = 5000;

// `<runtime> features` as JSON, or null when it cannot be had.
nlohmann::json runtimeFeaturesJson(const std::string& runtime_path, std::string* why) {
  RunResult r = runBounded({runtime_path, "features"}, kProbeTimeoutMs);
  if (r.start_errno != 0) {
    *why = runtime_path + " could not be started";
    return nullptr;
  }
  if (r.timed_out) {
    *why = runtime_path + " features did not answer in time";
    return nullptr;
  }
  if (!r.ok()) {
    *why = runtime_path + " has no features command";
    return nullptr;
  }
  nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  if (!j.is_object()) {
    *why = runtime_path + " features did not print a JSON object";
    return nullptr;
  }
  return j;
}

}  // namespace

RuntimeFeatures probeRuntimeFeatures(const std::string& runtime_path) {
  RuntimeFeatures f;
  // mount_setattr with a bad descriptor: EBADF where the kernel has it, ENOSYS where not.
  if (::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) != 0 && errno == ENOSYS) {
    f.recursive_read_only_why = "the kernel has no mount_setattr (Linux 5.12)";
    f.user_namespaces_why = f.recursive_read_only_why;
    return f;
  }
  std::string why;
  nlohmann::json j = runtimeFeaturesJson(runtime_path, &why);
  if (j.is_null()) {
    f.recursive_read_only_why = why;
    f.user_namespaces_why = why;
    return f;
  }
  const nlohmann::json* nss = nullptr;
  if (auto linux = j.find("linux"); linux != j.end() && linux->is_object()) {
    if (auto n = linux->find("namespaces"); n != linux->end() && n->is_array()) nss = &*n;
  }
  if (nss != nullptr && std::find(nss->begin(), nss->end(), "user") != nss->end()) {
    f.user_namespaces = true;
  } else {
    f.user_namespaces_why = runtime_path + " features lists no user namespace";
  }
  auto options = j.find("mountOptions");
  if (options != j.end() && options->is_array() &&
      std::find(options->begin(), options->end(), "rro") != options->end()) {
    f.recursive_read_only = true;
  } else {
    f.recursive_read_only_why = runtime_path + " does not know the \"rro\" mount option";
  }
  return f;
}

}  // namespace berth::sandbox
