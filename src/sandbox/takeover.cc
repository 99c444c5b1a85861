// A pod whose berth-shim died: berthd does the shim's duties itself. The processes of the pod
// (pause and containers) are killed through their cgroups, the runtime's state of each is
// deleted, and only then are exits reported (by the callers of monitorGone).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/spawn.h"
#include "common/status.h"
#include "oci/spec.h"
#include "sandbox/cgroup_sweep.h"
#include "sandbox/podsandbox.h"

namespace berth::sandbox {
namespace {

std::shared_ptr<spdlog::logger> log() { return logging::get("podsandbox"); }

constexpr absl::Duration kKillBound = absl::Seconds(5);
constexpr absl::Duration kRuntimeBound = absl::Seconds(10);

}  // namespace

// `runtime --root R delete --force id`, bounded. The state of a container that is gone already
// is fine ("does not exist").
absl::Status runtimeDelete(const RuntimeBinding& rt, const std::string& id) {
  pid_t pid = -1;
  int err = spawnProcess(
      {.argv = {rt.runtime_path, "--root", rt.runtime_root, "delete", "--force", id}}, &pid);
  if (err != 0) return errnoStatus(err, absl::StrCat("run ", rt.runtime_path, " delete ", id));
  const absl::Time deadline = absl::Now() + kRuntimeBound;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return lastErrnoStatus(absl::StrCat("wait for ", rt.runtime_path));
    if (absl::Now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::DeadlineExceededError(absl::StrCat(rt.runtime_path, " delete ", id,
                                                      " did not finish within ",
                                                      absl::FormatDuration(kRuntimeBound)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  // runc answers a container it does not know with an error; the check below is what counts.
  if (::access((rt.runtime_root + "/" + id).c_str(), F_OK) == 0) {
    return absl::InternalError(absl::StrCat(rt.runtime_path, " delete --force ", id,
                                            " left its state in ", rt.runtime_root));
  }
  return absl::OkStatus();
}

absl::Status PodSandboxController::takeOver(const std::string& id, const std::shared_ptr<Live>& l) {
  // Callers at once (the pause's and each container's exit path, recovery) join the first.
  return flights_.run("takeover/" + id, [&] { return takeOverOnce(id, l); });
}

absl::Status PodSandboxController::takeOverOnce(const std::string& id,
                                                const std::shared_ptr<Live>& l) {
  std::shared_ptr<shim::PodShim> dead;
  {
    absl::MutexLock lock(&l->mu);
    if (l->taken_over) return absl::OkStatus();
    dead = std::move(l->shim);
  }
  if (dead) dead->close();
  auto record = store_.getSandbox(id);
  if (absl::IsNotFound(record.status())) return absl::OkStatus();
  if (!record.ok()) return record.status();
  BERTH_ASSIGN_OR_RETURN(RuntimeBinding rt, binding((*record)->runtime_handler));
  // The containers first, then the pause; each by its own cgroup, then its runtime state.
  std::vector<std::pair<std::string, std::string>> tasks;  // id, cgroup
  for (const auto& c : store_.listContainers()) {
    if (c->sandbox_id == id) tasks.emplace_back(c->id, oci::cgroupsPathOf(c->spec_json));
  }
  tasks.emplace_back(id, oci::cgroupsPathOf((*record)->spec_json));
  size_t killed = 0;
  for (const auto& [task, cgroup] : tasks) {
    if (!cgroup.empty()) {
      BERTH_RETURN_IF_ERROR(annotate(killCgroup(cgroup, kKillBound, "/sys/fs/cgroup", &killed),
                                     absl::StrCat("pod sandbox ", id, ": end ", task)));
    }
    BERTH_RETURN_IF_ERROR(annotate(runtimeDelete(rt, task), absl::StrCat("pod sandbox ", id)));
  }
  if (killed > 0) {
    log()->warn(
        "pod sandbox {}: its shim is gone; killed the {} process(es) left in its {} "
        "cgroup(s)",
        id, killed, tasks.size());
  } else {
    log()->info("pod sandbox {}: its shim is gone and nothing of the pod runs", id);
  }
  absl::MutexLock lock(&l->mu);
  l->taken_over = true;
  l->process_status = shim::ProcessStatus::kDeleted;
  return absl::OkStatus();
}

absl::StatusOr<bool> PodSandboxController::monitorGone(const std::string& id) {
  auto l = live(id);
  if (!l) return true;  // removed, or never had a shim: nothing runs under one
  std::shared_ptr<shim::PodShim> shim;
  {
    absl::MutexLock lock(&l->mu);
    if (l->taken_over) return true;
    shim = l->shim;
  }
  if (shim != nullptr && options_.shims->connect(shim->dir()).ok()) return false;
  BERTH_RETURN_IF_ERROR(takeOver(id, l));
  return true;
}

}  // namespace berth::sandbox
