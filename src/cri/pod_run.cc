// RunPodSandbox: reserve the name and persist the pod, then let its controller create and
// start it while a thread of its own pins the pod's network namespace and sets up its network;
// every step is undone if another fails. The record names what a step acquires before the
// step runs (the netns path, and with it the CNI attachment), so that after a crash at any
// instant Stop and Remove find and release it.
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/crash_point.h"
#include "common/logging.h"
#include "common/random_id.h"
#include "common/undo.h"
#include "cri/pod_handlers.h"
#include "network/netns.h"

namespace berth::cri {

// CNI ADD for a pod being made, and the write recording its result. That write ends the pod's
// Creating when the controller has already recorded the pause started (store::networkMade).
// *added is set once the ADD succeeded, even when recording it failed, for the caller's undo.
absl::Status PodHandlers::setUpNetwork(const std::string& id, const network::CniAttachment& a,
                                       std::optional<nlohmann::json>* added) {
  auto result = options_.cni->add(a);
  if (!result.ok()) return result.status();
  *added = *std::move(result);
  crashPoint("pod.run.after_cni_add");
  const nlohmann::json& r = **added;
  BERTH_RETURN_IF_ERROR(store_
                            .updateSandbox(id,
                                           [&](store::SandboxRecord& rec) {
                                             rec.cni_result_json = r.dump();
                                             rec.ips = network::resultIps(r);
                                             if (rec.pending == store::Pending::kCreating &&
                                                 rec.state == store::SandboxState::kReady)
                                               rec.pending = store::Pending::kNone;
                                             return absl::OkStatus();
                                           })
                            .status());
  crashPoint("pod.run.after_cni_record");
  return absl::OkStatus();
}

void PodHandlers::addHandler(const std::string& name, const std::string& sandboxer,
                             std::optional<std::string> no_user_namespaces) {
  absl::MutexLock lock(&handlers_mu_);
  options_.sandboxers.emplace(name, sandboxer);
  if (no_user_namespaces) options_.no_user_namespaces.emplace(name, *no_user_namespaces);
}

absl::Status PodHandlers::run(const v1::RunPodSandboxRequest& req,
                              v1::RunPodSandboxResponse* resp) {
  if (!req.has_config()) return absl::InvalidArgumentError("RunPodSandbox: config is required");
  const std::string handler =
      req.runtime_handler().empty() ? options_.default_handler : req.runtime_handler();
  std::string sandboxer_name;
  std::optional<std::string> no_user_namespaces;
  {
    absl::MutexLock lock(&handlers_mu_);
    auto sandboxer = options_.sandboxers.find(handler);
    if (sandboxer == options_.sandboxers.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("runtime handler \"", req.runtime_handler(), "\" is not configured"));
    }
    sandboxer_name = sandboxer->second;
    if (auto why = options_.no_user_namespaces.find(handler);
        why != options_.no_user_namespaces.end()) {
      no_user_namespaces = why->second;
    }
  }
  BERTH_ASSIGN_OR_RETURN(sandbox::SandboxConfig config, toSandboxConfig(req.config(), handler));
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllers_.get(sandboxer_name));
  if (config.userns.has_value() && no_user_namespaces.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "RunPodSandbox ", podSandboxName(req.config().metadata()), ": runtime handler \"", handler,
        "\" cannot give a pod a user namespace of its own: ", *no_user_namespaces));
  }
  if (config.network == sandbox::NamespaceMode::kPod && options_.cni == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("RunPodSandbox ",
                                                      podSandboxName(req.config().metadata()),
                                                      ": no pod network is configured"));
  }

  store::SandboxRecord record;
  record.id = newObjectId();
  record.name = podSandboxName(req.config().metadata());
  record.metadata = {.name = config.name, .uid = config.uid, .ns = config.ns, .attempt = config.attempt};
  record.state = store::SandboxState::kCreated;
  record.runtime_handler = req.runtime_handler();
  record.sandboxer = sandboxer_name;
  record.created_at_ns = absl::ToUnixNanos(absl::Now());
  record.labels = config.labels;
  record.annotations = config.annotations;
  record.config_bytes = req.config().SerializeAsString();
  // Intent: the namespace (and the CNI attachment in it) this pod is about to get.
  if (config.network == sandbox::NamespaceMode::kPod) {
    record.netns_path = options_.netns_dir + "/" + record.id;
  }
  // And the pod's own user namespace, made with (and owning) the network namespace.
  if (config.userns.has_value()) record.userns_path = options_.userns_dir + "/" + record.id;
  // Like containerd, berth neither lists a pod nor gives it a status until RunPodSandbox has
  // made it: a relist must not see a pod being made as NOTREADY, which kubelet takes for a pod
  // that died. The write that finds both the pause started and the network recorded (the
  // controller's or setUpNetwork's) ends the Creating. One whose
  // creation failed is listed afterwards, so that kubelet removes it; one cut off by a crash is
  // stopped by recovery (which ends the Creating).
  record.pending = store::Pending::kCreating;
  const std::string id = record.id;

  if (absl::Status st = store_.createSandbox(record); !st.ok()) {
    if (absl::IsAlreadyExists(st)) {
      return absl::AlreadyExistsError(absl::StrCat("pod sandbox name \"", record.name,
                                                   "\" is already in use: ", st.message()));
    }
    return st;
  }
  crashPoint("pod.run.after_record");
  Undo undo;
  bool keep_record = false;  // set when an undo fails: the pod stays, in state Unknown
  undo.arm("pod sandbox record", [&]() -> absl::Status {
    if (keep_record) {
      return store_
          .updateSandbox(id, [](store::SandboxRecord& r) {
            r.state = store::SandboxState::kUnknown;
            r.pending = store::Pending::kNone;  // listed, for kubelet to remove
            return absl::OkStatus();
          })
          .status();
    }
    return store_.deleteSandbox(id);
  });

  sandbox::CreateOptions opts{.config = config, .runtime_handler = req.runtime_handler()};
  // The pod network is made on a thread of its own while the controller makes and starts the
  // pause: the namespace while the controller prepares the pod (its files, bundle and shim),
  // then CNI ADD while the pause starts in it (the pause only joins the namespace). Intent is
  // recorded already: the netns path names both.
  std::thread network;
  absl::Notification netns_made;
  absl::Status netns_st, network_st;
  std::optional<nlohmann::json> added;
  network::CniAttachment attachment;
  std::optional<network::UsernsPin> userns;
  if (config.userns.has_value()) {
    userns = network::UsernsPin{
        .path = record.userns_path, .uids = config.userns->uids, .gids = config.userns->gids};
    opts.userns_path = record.userns_path;
  }
  if (config.network == sandbox::NamespaceMode::kPod) {
    opts.netns_path = record.netns_path;
    attachment = cniAttachment(id, opts.netns_path, config);
    network = std::thread([&] {
      netns_st = network::createNetns(opts.netns_path, userns ? &*userns : nullptr);
      if (netns_st.ok()) crashPoint("pod.run.after_netns");
      netns_made.Notify();
      if (netns_st.ok()) network_st = setUpNetwork(id, attachment, &added);
    });
  }
  // Waits for the namespace; arms its undo if it was made.
  auto netns_done = [&]() -> absl::Status {
    if (!network.joinable()) return absl::OkStatus();
    netns_made.WaitForNotification();
    if (!netns_st.ok()) {
      return annotate(netns_st, absl::StrCat("pod sandbox ", id, ": create network namespace"));
    }
    undo.arm("network namespace", [&]() {
      absl::Status st = network::removeNetns(opts.netns_path);
      if (st.ok() && !opts.userns_path.empty()) st = network::removeNetns(opts.userns_path);
      keep_record = keep_record || !st.ok();
      return st;
    });
    return absl::OkStatus();
  };
  // Waits for the network; arms its undo if the ADD succeeded (recorded or not).
  auto network_done = [&]() -> absl::Status {
    if (!network.joinable()) return absl::OkStatus();
    network.join();
    if (!netns_st.ok()) return absl::OkStatus();  // reported by netns_done
    if (added.has_value()) {
      undo.arm("pod network", [&]() {
        absl::Status st = options_.cni->del(attachment, *added);
        keep_record = keep_record || !st.ok();
        return st;
      });
    }
    return annotate(network_st, absl::StrCat("pod sandbox ", id, ": set up pod network"));
  };
  undo.arm("sandbox", [&]() {
    absl::Status st = controller->shutdown(id);
    keep_record = keep_record || !st.ok();
    return st;
  });
  absl::Status st = controller->create(id, opts);
  absl::Status netns = netns_done();
  if (st.ok()) st = netns;
  if (st.ok()) st = controller->start(id).status();
  absl::Status net = network_done();
  if (st.ok()) st = net;
  if (!st.ok()) {
    if (absl::Status u = undo.run(); !u.ok()) {
      logging::get("cri")->error("RunPodSandbox {}: {}; pod kept in state UNKNOWN", id, u.message());
    }
    return annotate(st, absl::StrCat("run pod sandbox ", id));
  }
  undo.disarm();
  crashPoint("pod.run.before_reply");
  publish(id, v1::CONTAINER_CREATED_EVENT);
  publish(id, v1::CONTAINER_STARTED_EVENT);
  resp->set_pod_sandbox_id(id);
  return absl::OkStatus();
}

}  // namespace berth::cri
