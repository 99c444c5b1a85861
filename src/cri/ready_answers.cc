// ReadyAnswers: the CRI status and list answers of each record, made by the writer of a change.
#include "cri/ready_answers.h"

#include "common/json_text.h"
#include "container/container_manager.h"
#include "cri/container_handlers.h"

namespace berth::cri {

std::string asField1(const google::protobuf::MessageLite& message) {
  std::string body = message.SerializeAsString();
  std::string out;
  out.reserve(body.size() + 6);
  out.push_back(static_cast<char>((1 << 3) | 2));  // field 1, length-delimited
  for (uint64_t n = body.size();; n >>= 7) {       // the length as a varint
    if (n < 0x80) {
      out.push_back(static_cast<char>(n));
      break;
    }
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
  }
  out += body;
  return out;
}

v1::ContainerState criState(store::ContainerState s) {
  switch (s) {
    case store::ContainerState::kCreated:
      return v1::CONTAINER_CREATED;
    case store::ContainerState::kRunning:
      return v1::CONTAINER_RUNNING;
    case store::ContainerState::kExited:
      return v1::CONTAINER_EXITED;
    case store::ContainerState::kUnknown:
      return v1::CONTAINER_UNKNOWN;
  }
  return v1::CONTAINER_UNKNOWN;
}

v1::PodSandboxState criState(store::SandboxState s) {
  return s == store::SandboxState::kReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

void withImageNames(const std::vector<std::string>& refs, v1::ContainerStatus* status) {
  bool have_tag = false, have_digest = false;
  for (const auto& ref : refs) {
    bool digest = ref.find('@') != std::string::npos;
    if (digest && !have_digest) {
      status->set_image_ref(ref);
      have_digest = true;
    } else if (!digest && !have_tag) {
      status->mutable_image()->set_image(ref);
      have_tag = true;
    }
  }
}

ContainerAnswer ReadyAnswers::makeContainer(const store::ContainerPtr& rec) {
  const store::ContainerRecord& r = *rec;
  ContainerAnswer a;
  a.record = rec;
  a.hidden = r.pending == store::Pending::kCreating;
  const v1::ContainerState state = criState(r.state);

  v1::Container& l = a.listed;
  l.set_id(r.id);
  l.set_pod_sandbox_id(r.sandbox_id);
  l.mutable_metadata()->set_name(r.metadata.name);
  l.mutable_metadata()->set_attempt(r.metadata.attempt);
  l.mutable_image()->set_image(r.image_ref);
  l.set_image_ref(r.image_id);
  l.set_image_id(r.image_id);
  l.set_state(state);
  l.set_created_at(r.created_at_ns);
  l.mutable_labels()->insert(r.labels.begin(), r.labels.end());
  l.mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  a.listed_field = asField1(l);

  v1::ContainerConfig config;
  (void)config.ParseFromString(r.config_bytes);
  v1::ContainerStatus& s = a.status;
  s.set_id(r.id);
  s.mutable_metadata()->set_name(r.metadata.name);
  s.mutable_metadata()->set_attempt(r.metadata.attempt);
  s.set_state(state);
  // CRI does not allow a zero created_at; the record always has one.
  s.set_created_at(r.created_at_ns);
  if (state == v1::CONTAINER_RUNNING || state == v1::CONTAINER_EXITED ||
      state == v1::CONTAINER_UNKNOWN) {
    s.set_started_at(r.started_at_ns);
  }
  if (state == v1::CONTAINER_EXITED || state == v1::CONTAINER_UNKNOWN) {
    s.set_finished_at(r.finished_at_ns);
  }
  s.set_exit_code(r.exit_code);
  // The config's image spec (its runtime handler and annotations too), named as asked for
  // until withImageNames() names it by its current tag and digest.
  *s.mutable_image() = config.image();
  s.mutable_image()->set_image(r.image_ref);
  s.set_image_ref(r.image_id);
  s.set_image_id(r.image_id);
  std::string reason = r.reason;
  if (state == v1::CONTAINER_EXITED && reason.empty()) {
    reason = r.exit_code == 0 ? container::kReasonCompleted : container::kReasonError;
  }
  s.set_reason(reason);
  s.set_message(r.message);
  s.mutable_labels()->insert(r.labels.begin(), r.labels.end());
  s.mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  *s.mutable_mounts() = config.mounts();
  s.set_log_path(r.log_path);
  if (config.linux().has_resources()) {
    *s.mutable_resources()->mutable_linux() = config.linux().resources();
  }
  // The user the process runs as, from the spec.
  nlohmann::json spec = parseJsonObject(r.spec_json);
  if (auto u = spec.find("process"); u != spec.end() && u->contains("user")) {
    const nlohmann::json& user = (*u)["user"];
    auto* lu = s.mutable_user()->mutable_linux();
    lu->set_uid(user.value("uid", int64_t{0}));
    lu->set_gid(user.value("gid", int64_t{0}));
    if (auto g = user.find("additionalGids"); g != user.end() && g->is_array()) {
      for (const auto& gid : *g) {
        if (gid.is_number_integer()) lu->add_supplemental_groups(gid.get<int64_t>());
      }
    }
  }
  // The signal a stop sends: the config's, else the image's, else SIGTERM (stored at create).
  s.set_stop_signal(criSignal(r.stop_signal.empty() ? "SIGTERM" : r.stop_signal));
  return a;
}

PodAnswer ReadyAnswers::makePod(const store::SandboxPtr& rec) {
  const store::SandboxRecord& r = *rec;
  PodAnswer a;
  a.record = rec;
  a.hidden = r.pending == store::Pending::kCreating;
  auto fillMetadata = [&r](v1::PodSandboxMetadata* m) {
    m->set_name(r.metadata.name);
    m->set_uid(r.metadata.uid);
    m->set_namespace_(r.metadata.ns);
    m->set_attempt(r.metadata.attempt);
  };
  v1::PodSandbox& l = a.listed;
  l.set_id(r.id);
  fillMetadata(l.mutable_metadata());
  l.set_state(criState(r.state));
  l.set_created_at(r.created_at_ns);
  l.mutable_labels()->insert(r.labels.begin(), r.labels.end());
  l.mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  l.set_runtime_handler(r.runtime_handler);
  a.listed_field = asField1(l);

  v1::PodSandboxStatus& s = a.status;
  s.set_id(r.id);
  fillMetadata(s.mutable_metadata());
  s.set_state(criState(r.state));
  s.set_created_at(r.created_at_ns);
  v1::PodSandboxConfig config;
  bool have_config = config.ParseFromString(r.config_bytes);
  // Always set, as containerd does (kubelet logs every status without it); empty for a
  // host-network pod and once the pod's network namespace is closed.
  auto* network = s.mutable_network();
  bool host_network =
      have_config && config.linux().security_context().namespace_options().network() == v1::NODE;
  if (!r.ips.empty() && !host_network && !r.netns_closed) {
    network->set_ip(r.ips[0]);
    for (size_t i = 1; i < r.ips.size(); ++i) network->add_additional_ips()->set_ip(r.ips[i]);
  }
  if (have_config) {
    const auto& ns = config.linux().security_context().namespace_options();
    auto* opts = s.mutable_linux()->mutable_namespaces()->mutable_options();
    opts->set_network(ns.network());
    opts->set_pid(ns.pid());
    opts->set_ipc(ns.ipc());
    opts->set_target_id(ns.target_id());
  }
  s.mutable_labels()->insert(r.labels.begin(), r.labels.end());
  s.mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  s.set_runtime_handler(r.runtime_handler);
  return a;
}

ReadyAnswers::ReadyAnswers(store::Store& store) : store_(store) { store_.setObserver(this); }

ReadyAnswers::~ReadyAnswers() { store_.setObserver(nullptr); }

ContainerAnswerPtr ReadyAnswers::container(const std::string& id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = containers_.find(id);
  return it == containers_.end() ? nullptr : it->second;
}

PodAnswerPtr ReadyAnswers::pod(const std::string& id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = pods_.find(id);
  return it == pods_.end() ? nullptr : it->second;
}

std::vector<ContainerAnswerPtr> ReadyAnswers::containers(const std::string& pod_id) const {
  std::vector<ContainerAnswerPtr> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(containers_.size());
  for (const auto& [id, a] : containers_) {
    if (pod_id.empty() || a->record->sandbox_id == pod_id) out.push_back(a);
  }
  return out;
}

std::vector<PodAnswerPtr> ReadyAnswers::pods() const {
  std::vector<PodAnswerPtr> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(pods_.size());
  for (const auto& [id, a] : pods_) out.push_back(a);
  return out;
}

// Made before the lock is taken: readers wait only for the pointer swap.
void ReadyAnswers::sandboxChanged(const store::SandboxPtr& now) {
  auto a = std::make_shared<const PodAnswer>(makePod(now));
  made_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  pods_[now->id] = std::move(a);
}

void ReadyAnswers::sandboxRemoved(const std::string& id) {
  absl::MutexLock lock(&mu_);
  pods_.erase(id);
}

void ReadyAnswers::containerChanged(const store::ContainerPtr& now) {
  auto a = std::make_shared<const ContainerAnswer>(makeContainer(now));
  made_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  containers_[now->id] = std::move(a);
}

void ReadyAnswers::containerRemoved(const std::string& id) {
  absl::MutexLock lock(&mu_);
  containers_.erase(id);
}

}  // namespace berth::cri
