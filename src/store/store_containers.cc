// Store: containers. Locking as described in store.h.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "store/internal.h"
#include "store/rows.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace berth::store {

absl::Status Store::createContainer(const ContainerRecord& record) {
  if (record.id.empty() || record.name.empty() || record.sandbox_id.empty()) {
    return absl::InvalidArgumentError("container id, name and sandbox id must not be empty");
  }
  absl::MutexLock w(&write_mu_);
  bool held = false;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (index_.containers.contains(record.id)) return alreadyExistsError("container", record.id);
    if (!index_.sandboxes.contains(record.sandbox_id)) {
      return notFoundError("pod sandbox", record.sandbox_id);
    }
    BERTH_ASSIGN_OR_RETURN(held, nameHeld(record.name, record.id));
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("create container \"", record.id, "\""),
                                 [&](Database& db) -> absl::Status {
                                   BERTH_RETURN_IF_ERROR(insertContainerRow(db, record));
                                   if (held) return absl::OkStatus();
                                   return insertNameRow(db, record.name, record.id);
                                 }));
  auto published = std::make_shared<const ContainerRecord>(record);
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.containers[record.id] = published;
    index_.sandbox_containers[record.sandbox_id].insert(record.id);
    index_.names[record.name] = record.id;
  }
  if (observer_ != nullptr) observer_->containerChanged(published);
  storeLog()->debug("created container {} ({}) in pod sandbox {}", record.id, record.name,
                    record.sandbox_id);
  return absl::OkStatus();
}

absl::StatusOr<ContainerPtr> Store::updateContainer(absl::string_view id,
                                                    UpdateFn<ContainerRecord> fn) {
  absl::MutexLock w(&write_mu_);
  ContainerPtr current;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    auto it = index_.containers.find(id);
    if (it == index_.containers.end()) return notFoundError("container", id);
    current = it->second;
  }
  ContainerRecord next = *current;
  BERTH_RETURN_IF_ERROR(fn(next));
  if (next.id != current->id || next.name != current->name ||
      next.sandbox_id != current->sandbox_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update of container \"", id, "\" must not change its id, name or sandbox id"));
  }
  if (!allowedTransition(current->state, next.state)) {
    return transitionError("container", id, toString(current->state), toString(next.state));
  }
  if (!allowedTransition(current->pending, next.pending)) {
    return pendingError("container", id, current->pending, next.pending);
  }
  if (next == *current) return current;  // nothing to write
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("update container \"", id, "\""),
                                 [&](Database& db) { return updateContainerRow(db, next); }));
  auto published = std::make_shared<const ContainerRecord>(std::move(next));
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.containers[current->id] = published;
  }
  if (observer_ != nullptr) observer_->containerChanged(published);
  if (current->state != published->state) {
    storeLog()->debug("container {}: {} -> {}", current->id, toString(current->state),
                      toString(published->state));
  }
  return published;
}

absl::Status Store::deleteContainer(absl::string_view id) {
  absl::MutexLock w(&write_mu_);
  ContainerPtr current;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    auto it = index_.containers.find(id);
    if (it == index_.containers.end()) return absl::OkStatus();
    current = it->second;
  }
  const std::string& cid = current->id;
  BERTH_RETURN_IF_ERROR(
      transact(absl::StrCat("delete container \"", cid, "\""), [&](Database& db) -> absl::Status {
        BERTH_RETURN_IF_ERROR(deleteContainerRow(db, cid));
        return deleteNameRow(db, current->name, cid);
      }));
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.containers.erase(cid);
    auto siblings = index_.sandbox_containers.find(current->sandbox_id);
    if (siblings != index_.sandbox_containers.end()) {
      siblings->second.erase(cid);
      if (siblings->second.empty()) index_.sandbox_containers.erase(siblings);
    }
    auto name = index_.names.find(current->name);
    if (name != index_.names.end() && name->second == cid) index_.names.erase(name);
  }
  if (observer_ != nullptr) observer_->containerRemoved(cid);
  storeLog()->debug("deleted container {}", cid);
  return absl::OkStatus();
}

absl::StatusOr<ContainerPtr> Store::getContainer(absl::string_view id) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto it = index_.containers.find(id);
  if (it == index_.containers.end()) return notFoundError("container", id);
  return it->second;
}

std::vector<ContainerPtr> Store::listContainers() const {
  absl::ReaderMutexLock m(&mem_mu_);
  std::vector<ContainerPtr> out;
  out.reserve(index_.containers.size());
  for (const auto& [id, record] : index_.containers) out.push_back(record);
  return out;
}

std::vector<ContainerPtr> Store::listContainers(absl::string_view sandbox_id) const {
  absl::ReaderMutexLock m(&mem_mu_);
  std::vector<ContainerPtr> out;
  auto ids = index_.sandbox_containers.find(sandbox_id);
  if (ids == index_.sandbox_containers.end()) return out;
  out.reserve(ids->second.size());
  for (const std::string& id : ids->second) {
    auto it = index_.containers.find(id);
    if (it != index_.containers.end()) out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<std::string> Store::resolveContainerId(absl::string_view prefix) const {
  absl::ReaderMutexLock m(&mem_mu_);
  return resolvePrefix(index_.containers, prefix, "container");
}

}  // namespace berth::store
