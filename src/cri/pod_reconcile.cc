// Start-up reconciliation: what no pod or container record names is torn down. With the intent
// recorded before each step this only finds debris of stores written before that, or of a
// crash inside a single step; the sweep is cheap and bounded, and it runs before serving.
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/random_id.h"
#include "cri/pod_handlers.h"
#include "network/netns.h"
#include "sandbox/cgroup_sweep.h"

namespace berth::cri {
namespace {

namespace fs = std::filesystem;

// Names of the entries of `dir` that look like object ids.
std::vector<std::string> idsIn(const std::string& dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (isObjectId(name)) ids.push_back(name);
  }
  return ids;
}

}  // namespace

size_t PodHandlers::reconcile(const ReconcileOptions& o) {
  auto log = logging::get("cri");
  std::set<std::string> known;
  for (const auto& p : store_.listSandboxes()) known.insert(p->id);
  for (const auto& c : store_.listContainers()) known.insert(c->id);
  size_t removed = 0;
  auto done = [&](const absl::Status& st, const std::string& what) {
    if (st.ok()) {
      ++removed;
      log->warn("removed {}, which no pod or container record names", what);
    } else {
      log->error("removing {}, which no record names: {}", what, st.message());
    }
  };
  // Pod dirs: their shim (and what it runs), mounts and files.
  if (auto podsandbox = controllers_.get("podsandbox"); podsandbox.ok()) {
    for (const std::string& id : idsIn(o.pods_dir)) {
      if (!known.contains(id)) done((*podsandbox)->shutdown(id), absl::StrCat("pod dir of ", id));
    }
  }
  // Pinned network namespaces and their CNI attachments.
  for (const std::string& id : idsIn(options_.netns_dir)) {
    if (known.contains(id)) continue;
    const std::string path = options_.netns_dir + "/" + id;
    absl::Status st = absl::OkStatus();
    if (options_.cni != nullptr) {
      const std::string netns = network::netnsClosed(path) ? "" : path;
      st = options_.cni->del(cniAttachment(id, netns, sandbox::SandboxConfig{}), nullptr);
    }
    if (st.ok()) st = network::removeNetns(path);
    done(st, absl::StrCat("network namespace and pod network of ", id));
  }
  // Pinned user namespaces (the network namespace each owns went above).
  if (!options_.userns_dir.empty()) {
    for (const std::string& id : idsIn(options_.userns_dir)) {
      if (known.contains(id)) continue;
      done(network::removeNetns(options_.userns_dir + "/" + id),
           absl::StrCat("user namespace of ", id));
    }
  }
  // The runtime's state of containers nobody knows (kills what still runs of them).
  for (const auto& [handler, rt] : o.runtimes) {
    for (const std::string& id : idsIn(rt.runtime_root)) {
      if (!known.contains(id))
        done(sandbox::runtimeDelete(rt, id), absl::StrCat(handler, " container ", id));
    }
  }
  // Cgroups below berth's own parent, found in any hierarchy (killCgroup clears all of them).
  if (!o.cgroup_parent.empty()) {
    std::set<std::string> ids;
    std::vector<std::string> parents = {o.cgroup_root + o.cgroup_parent};  // a pure v2 host
    std::error_code ec;
    for (const auto& h : fs::directory_iterator(o.cgroup_root, ec)) {
      parents.push_back(h.path().string() + o.cgroup_parent);
    }
    for (const std::string& parent : parents) {
      for (const std::string& id : idsIn(parent)) {
        if (!known.contains(id)) ids.insert(id);
      }
    }
    for (const std::string& id : ids) {
      done(sandbox::killCgroup(o.cgroup_parent + "/" + id, absl::Seconds(5), o.cgroup_root),
           absl::StrCat("cgroup ", o.cgroup_parent, "/", id));
    }
  }
  return removed;
}

size_t PodHandlers::finishCutOff(events::BackoffMonitor& monitor) {
  auto log = logging::get("cri");
  size_t started = 0;
  for (const auto& p : store_.listSandboxes()) {
    const std::string id = p->id;
    if (p->pending == store::Pending::kRemoving) {
      log->warn("pod sandbox {}: a removal was cut off by a crash; finishing it", id);
      monitor.soon("pod-remove/" + id, [this, id] {
        return flights_.run("remove/" + id, [this, &id] { return removeSandbox(id); });
      });
    } else if (p->pending == store::Pending::kStopping || p->pending == store::Pending::kCreating) {
      log->warn("pod sandbox {}: {} was cut off by a crash; stopping the pod", id,
                p->pending == store::Pending::kStopping ? "a stop" : "its RunPodSandbox");
      monitor.soon("pod-stop/" + id, [this, id] { return stopSandbox(id); });
    } else {
      continue;
    }
    ++started;
  }
  return started;
}

}  // namespace berth::cri
