#include "sandbox/runtime_features.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "common/spawn.h"
#include "common/unique_fd.h"
#include "nlohmann/json.hpp"

namespace berth::sandbox {
namespace {

constexpr auto kProbeTimeout = std::chrono::seconds(5);

// `<runtime> features` as JSON, or null when it cannot be had.
nlohmann::json runtimeFeaturesJson(const std::string& runtime_path, std::string* why) {
  UniqueFd out(::memfd_create("berth-runtime-features", MFD_CLOEXEC));
  if (!out.valid()) {
    *why = "memfd_create failed";
    return nullptr;
  }
  pid_t pid = 0;
  if (int err = spawnProcess(
          SpawnOptions{.argv = {runtime_path, "features"}, .stdout_fd = out.get()}, &pid);
      err != 0) {
    *why = runtime_path + " could not be started";
    return nullptr;
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + kProbeTimeout;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      *why = runtime_path + " features did not answer in time";
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = runtime_path + " has no features command";
    return nullptr;
  }
  std::string text;
  char buf[4096];
  for (off_t at = 0;;) {
    ssize_t n = ::pread(out.get(), buf, sizeof buf, at);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
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
