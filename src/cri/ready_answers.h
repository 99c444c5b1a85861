// CRI answers made when a record changes, not when they are asked for. kubelet asks for the
// status of every pod and container and lists them all every second; those calls copy these
// answers and parse nothing (the stored ContainerConfig, PodSandboxConfig and OCI spec are
// parsed once per change of the record, by the writer, in the store's RecordObserver call).
// Readers take only this class's lock, which no writer holds across I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/synchronization/mutex.h"
#include "runtime/v1/api.h"
#include "store/store.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

struct ContainerAnswer {
  store::ContainerPtr record;  // what the answers were made from
  v1::Container listed;        // ListContainers
  // `listed` as field 1 of ListContainersResponse (tag, length, message): a list answer is
  // these bytes one after the other.
  std::string listed_field;
  // ContainerStatus, with the image named as the container asked for it (image) and by id
  // (image_ref); withImageNames() names it by the image's current tag and digest.
  v1::ContainerStatus status;
  // Not listed and without a status until CreateContainer has made it (as containerd).
  bool hidden = false;
};

struct PodAnswer {
  store::SandboxPtr record;
  v1::PodSandbox listed;  // ListPodSandbox
  std::string listed_field;  // as field 1 of ListPodSandboxResponse
  // PodSandboxStatus without its timestamp, containers_statuses and verbose info.
  v1::PodSandboxStatus status;
  bool hidden = false;  // RunPodSandbox has not made it yet
};

using ContainerAnswerPtr = std::shared_ptr<const ContainerAnswer>;
using PodAnswerPtr = std::shared_ptr<const PodAnswer>;

// Thread-safe.
class ReadyAnswers final : public store::RecordObserver {
 public:
  // Observes `store` (and takes in what it holds) until destroyed.
  explicit ReadyAnswers(store::Store& store);
  ~ReadyAnswers() override;
  ReadyAnswers(const ReadyAnswers&) = delete;
  ReadyAnswers& operator=(const ReadyAnswers&) = delete;

  // Null when there is no such record.
  ContainerAnswerPtr container(const std::string& id) const;
  PodAnswerPtr pod(const std::string& id) const;
  // By id; with a pod id, only that pod's containers.
  std::vector<ContainerAnswerPtr> containers(const std::string& pod_id = "") const;
  std::vector<PodAnswerPtr> pods() const;

  // How many answers were made so far: each parsed a record's stored config and spec. Status
  // and list calls leave it alone.
  uint64_t made() const { return made_.load(std::memory_order_relaxed); }

  // store::RecordObserver
  void sandboxChanged(const store::SandboxPtr& now) override;
  void sandboxRemoved(const std::string& id) override;
  void containerChanged(const store::ContainerPtr& now) override;
  void containerRemoved(const std::string& id) override;

  // The answers for one record (also for tests).
  static ContainerAnswer makeContainer(const store::ContainerPtr& r);
  static PodAnswer makePod(const store::SandboxPtr& r);

 private:
  store::Store& store_;
  std::atomic<uint64_t> made_{0};
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, ContainerAnswerPtr> containers_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, PodAnswerPtr> pods_ ABSL_GUARDED_BY(mu_);
};

// `message` serialised as length-delimited field 1 of an enclosing message.
std::string asField1(const google::protobuf::MessageLite& message);

// A list response made of `answers`' listed items: their listed_field bytes one after the other.
template <typename AnswerPtr>
void joinListed(const std::vector<AnswerPtr>& answers, std::string* out) {
  size_t size = 0;
  for (const auto& a : answers) size += a->listed_field.size();
  out->reserve(size);
  for (const auto& a : answers) out->append(a->listed_field);
}

// The CRI state of a record's state.
v1::ContainerState criState(store::ContainerState s);
v1::PodSandboxState criState(store::SandboxState s);

// Names the status's image by its current references (`refs`, from the image's record): the
// first tag as image, the first repo digest as image_ref (seed 002); kept as made otherwise.
void withImageNames(const std::vector<std::string>& refs, v1::ContainerStatus* status);

}  // namespace berth::cri
