// Store: opening and loading, the transaction helper, pod sandboxes and name reservations.
// Containers, images and snapshots are in store_containers.cc and store_images.cc.
#include "store/store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "store/internal.h"
#include "store/rows.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace berth::store {

Store::Store(std::unique_ptr<Database> db) : db_(std::move(db)) {}

Store::~Store() = default;

absl::StatusOr<std::unique_ptr<Store>> Store::open(const std::string& db_path) {
  // Database::open's errors already name the path.
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::open(db_path));
  const std::string context = absl::StrCat("open store ", db_path);
  BERTH_RETURN_IF_ERROR(annotate(initializeSchema(*db), context));
  std::unique_ptr<Store> store(new Store(std::move(db)));
  BERTH_RETURN_IF_ERROR(annotate(store->load(), context));
  return store;
}

absl::Status Store::load() {
  // Build the index in a local (mem_mu_ is not needed: nobody can see this Store yet), then
  // install it.
  Index index;
  absl::MutexLock w(&write_mu_);
  {
    // One transaction, so that every table is read from the same snapshot.
    BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(*db_));
    BERTH_RETURN_IF_ERROR(readSandboxRows(*db_, [&](SandboxRecord&& r) {
      std::string id = r.id;
      index.sandboxes.emplace(std::move(id), std::make_shared<const SandboxRecord>(std::move(r)));
    }));
    BERTH_RETURN_IF_ERROR(readContainerRows(*db_, [&](ContainerRecord&& r) {
      index.sandbox_containers[r.sandbox_id].insert(r.id);
      std::string id = r.id;
      index.containers.emplace(std::move(id),
                               std::make_shared<const ContainerRecord>(std::move(r)));
    }));
    BERTH_RETURN_IF_ERROR(readImageRows(*db_, [&](ImageRecord&& r) {
      std::string id = r.id;
      index.images.emplace(std::move(id), std::make_shared<const ImageRecord>(std::move(r)));
    }));
    BERTH_RETURN_IF_ERROR(readImageRefRows(*db_, [&](std::string&& ref, std::string&& image_id) {
      indexImageRef(index, ref, image_id);
    }));
    BERTH_RETURN_IF_ERROR(readSnapshotRows(*db_, [&](SnapshotRecord&& r) {
      std::string key = r.key;
      index.snapshots.emplace(std::move(key), std::make_shared<const SnapshotRecord>(std::move(r)));
    }));
    BERTH_RETURN_IF_ERROR(readNameRows(*db_, [&](std::string&& name, std::string&& owner) {
      index.names.emplace(std::move(name), std::move(owner));
    }));
  }  // read-only: the transaction is simply rolled back
  storeLog()->info("loaded {}: {} pod sandboxes, {} containers, {} images, {} snapshots",
                   db_->path(), index.sandboxes.size(), index.containers.size(),
                   index.images.size(), index.snapshots.size());
  absl::WriterMutexLock m(&mem_mu_);
  index_ = std::move(index);
  return absl::OkStatus();
}

absl::Status Store::transact(absl::string_view what,
                             absl::FunctionRef<absl::Status(Database&)> body) {
  absl::StatusOr<Transaction> tx = Transaction::begin(*db_);
  absl::Status status = tx.status();
  if (status.ok()) status = body(*db_);
  if (status.ok()) status = tx->commit();
  // An uncommitted tx rolls back as it goes out of scope.
  return status.ok() ? status : annotate(status, what);
}

absl::StatusOr<bool> Store::nameHeld(absl::string_view name, absl::string_view owner) const {
  auto it = index_.names.find(name);
  if (it == index_.names.end()) return false;
  if (it->second == owner) return true;
  return absl::AlreadyExistsError(
      absl::StrCat("name \"", name, "\" is reserved for \"", it->second, "\""));
}

void Store::setObserver(RecordObserver* observer) {
  absl::MutexLock w(&write_mu_);
  observer_ = observer;
  if (observer == nullptr) return;
  std::vector<SandboxPtr> pods;
  std::vector<ContainerPtr> containers;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    for (const auto& [id, r] : index_.sandboxes) pods.push_back(r);
    for (const auto& [id, r] : index_.containers) containers.push_back(r);
  }
  for (const auto& r : pods) observer->sandboxChanged(r);
  for (const auto& r : containers) observer->containerChanged(r);
}

// --- Pod sandboxes ---

absl::Status Store::createSandbox(const SandboxRecord& record) {
  if (record.id.empty() || record.name.empty()) {
    return absl::InvalidArgumentError("pod sandbox id and name must not be empty");
  }
  absl::MutexLock w(&write_mu_);
  bool held = false;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (index_.sandboxes.contains(record.id)) return alreadyExistsError("pod sandbox", record.id);
    BERTH_ASSIGN_OR_RETURN(held, nameHeld(record.name, record.id));
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("create pod sandbox \"", record.id, "\""),
                                 [&](Database& db) -> absl::Status {
                                   BERTH_RETURN_IF_ERROR(insertSandboxRow(db, record));
                                   if (held) return absl::OkStatus();
                                   return insertNameRow(db, record.name, record.id);
                                 }));
  auto published = std::make_shared<const SandboxRecord>(record);
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.sandboxes[record.id] = published;
    index_.names[record.name] = record.id;
  }
  if (observer_ != nullptr) observer_->sandboxChanged(published);
  storeLog()->debug("created pod sandbox {} ({})", record.id, record.name);
  return absl::OkStatus();
}

absl::StatusOr<SandboxPtr> Store::updateSandbox(absl::string_view id, UpdateFn<SandboxRecord> fn) {
  absl::MutexLock w(&write_mu_);
  SandboxPtr current;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    auto it = index_.sandboxes.find(id);
    if (it == index_.sandboxes.end()) return notFoundError("pod sandbox", id);
    current = it->second;
  }
  SandboxRecord next = *current;
  BERTH_RETURN_IF_ERROR(fn(next));
  if (next.id != current->id || next.name != current->name) {
    return absl::InvalidArgumentError(
        absl::StrCat("update of pod sandbox \"", id, "\" must not change its id or name"));
  }
  if (!allowedTransition(current->state, next.state)) {
    return transitionError("pod sandbox", id, toString(current->state), toString(next.state));
  }
  if (!allowedTransition(current->pending, next.pending)) {
    return pendingError("pod sandbox", id, current->pending, next.pending);
  }
  if (next == *current) return current;  // nothing to write
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("update pod sandbox \"", id, "\""),
                                 [&](Database& db) { return updateSandboxRow(db, next); }));
  auto published = std::make_shared<const SandboxRecord>(std::move(next));
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.sandboxes[current->id] = published;
  }
  if (observer_ != nullptr) observer_->sandboxChanged(published);
  if (current->state != published->state) {
    storeLog()->debug("pod sandbox {}: {} -> {}", current->id, toString(current->state),
                      toString(published->state));
  }
  return published;
}

absl::Status Store::deleteSandbox(absl::string_view id) {
  absl::MutexLock w(&write_mu_);
  SandboxPtr current;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    auto it = index_.sandboxes.find(id);
    if (it == index_.sandboxes.end()) return absl::OkStatus();
    current = it->second;
    auto c = index_.sandbox_containers.find(id);
    if (c != index_.sandbox_containers.end() && !c->second.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod sandbox \"", id, "\" still has ", c->second.size(), " container(s)"));
    }
  }
  const std::string& sid = current->id;
  BERTH_RETURN_IF_ERROR(
      transact(absl::StrCat("delete pod sandbox \"", sid, "\""), [&](Database& db) -> absl::Status {
        BERTH_RETURN_IF_ERROR(deleteSandboxRow(db, sid));
        return deleteNameRow(db, current->name, sid);
      }));
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.sandboxes.erase(sid);
    index_.sandbox_containers.erase(sid);
    auto name = index_.names.find(current->name);
    if (name != index_.names.end() && name->second == sid) index_.names.erase(name);
  }
  if (observer_ != nullptr) observer_->sandboxRemoved(sid);
  storeLog()->debug("deleted pod sandbox {}", sid);
  return absl::OkStatus();
}

absl::StatusOr<SandboxPtr> Store::getSandbox(absl::string_view id) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto it = index_.sandboxes.find(id);
  if (it == index_.sandboxes.end()) return notFoundError("pod sandbox", id);
  return it->second;
}

std::vector<SandboxPtr> Store::listSandboxes() const {
  absl::ReaderMutexLock m(&mem_mu_);
  std::vector<SandboxPtr> out;
  out.reserve(index_.sandboxes.size());
  for (const auto& [id, record] : index_.sandboxes) out.push_back(record);
  return out;
}

absl::StatusOr<std::string> Store::resolveSandboxId(absl::string_view prefix) const {
  absl::ReaderMutexLock m(&mem_mu_);
  return resolvePrefix(index_.sandboxes, prefix, "pod sandbox");
}

// --- Name reservations ---

absl::Status Store::reserveName(absl::string_view name, absl::string_view owner) {
  if (name.empty() || owner.empty()) {
    return absl::InvalidArgumentError("name and owner must not be empty");
  }
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock m(&mem_mu_);
    BERTH_ASSIGN_OR_RETURN(bool held, nameHeld(name, owner));
    if (held) return absl::OkStatus();
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("reserve name \"", name, "\""),
                                 [&](Database& db) { return insertNameRow(db, name, owner); }));
  absl::WriterMutexLock m(&mem_mu_);
  index_.names.insert_or_assign(std::string(name), std::string(owner));
  return absl::OkStatus();
}

absl::Status Store::releaseName(absl::string_view name) {
  absl::MutexLock w(&write_mu_);
  std::string owner;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    auto it = index_.names.find(name);
    if (it == index_.names.end()) return absl::OkStatus();
    owner = it->second;
    // Releasing a live object's name would let a second object take it.
    auto sandbox = index_.sandboxes.find(owner);
    if (sandbox != index_.sandboxes.end() && sandbox->second->name == name) {
      return absl::FailedPreconditionError(
          absl::StrCat("name \"", name, "\" belongs to pod sandbox \"", owner, "\""));
    }
    auto container = index_.containers.find(owner);
    if (container != index_.containers.end() && container->second->name == name) {
      return absl::FailedPreconditionError(
          absl::StrCat("name \"", name, "\" belongs to container \"", owner, "\""));
    }
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("release name \"", name, "\""),
                                 [&](Database& db) { return deleteNameRow(db, name, owner); }));
  absl::WriterMutexLock m(&mem_mu_);
  index_.names.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Store::nameOwner(absl::string_view name) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto it = index_.names.find(name);
  if (it == index_.names.end()) {
    return absl::NotFoundError(absl::StrCat("name \"", name, "\" is not reserved"));
  }
  return it->second;
}

std::vector<std::pair<std::string, std::string>> Store::listNames() const {
  absl::ReaderMutexLock m(&mem_mu_);
  return {index_.names.begin(), index_.names.end()};
}

}  // namespace berth::store
