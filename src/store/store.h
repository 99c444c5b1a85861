// The metadata store: pod sandboxes, containers, images, snapshots and name reservations,
// persisted in SQLite and served to readers from in-memory indexes.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "store/types.h"

namespace berth::store {

class Database;

// Changes a copy of a record inside Store::update*. It runs with the writer lock held: keep
// it quick, and never call a Store writer from it (that deadlocks); readers are fine.
template <typename Record>
using UpdateFn = absl::FunctionRef<absl::Status(Record&)>;

// Threads: any thread may call any method.
//
// Readers (get*, list*, resolve*, nameOwner, imageRefs) only take mem_mu_ in shared mode for
// the time it takes to copy a few pointers; they never touch SQLite, so they never wait for
// disk (architecture rule 1).
//
// Writers (create*, update*, delete*, put*, add*, remove*, reserve*, release*) serialise on
// write_mu_, which they hold across their SQLite transaction. They read the current records
// under mem_mu_ (shared), commit, and only then take mem_mu_ exclusively to publish the
// change. Nothing changes in memory unless the transaction committed; on any error both
// memory and disk are as before the call.
//
// Lock order: write_mu_ before mem_mu_. No lock is held while calling out of the store,
// except write_mu_ across an UpdateFn.
//
// Every write is acknowledged only once it is durable (WAL, synchronous=FULL).
// Told of every committed change of a pod or container record: by the writer's thread, after
// the change is published, while the store's write lock is still held, so calls come one at a
// time and in commit order. It must be quick and must not write to the store (reads are fine).
class RecordObserver {
 public:
  virtual ~RecordObserver() = default;
  virtual void sandboxChanged(const SandboxPtr& now) = 0;
  virtual void sandboxRemoved(const std::string& id) = 0;
  virtual void containerChanged(const ContainerPtr& now) = 0;
  virtual void containerRemoved(const std::string& id) = 0;
};

class Store {
 public:
  // Opens the database at `db_path` (created, mode 0600, if missing), migrates it forward to
  // the current schema and loads it into memory. FailedPrecondition if the database was
  // written by a newer berth.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> open(const std::string& db_path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Sets the observer of record changes (null: none) and tells it every record there is now;
  // from then on it hears of each change. The observer must stay valid until it is unset.
  void setObserver(RecordObserver* observer);

  // --- Pod sandboxes ---
  // Inserts `record` and reserves record.name for record.id, atomically. The name may
  // already be reserved by record.id (reserveName before the slow set-up work).
  [[nodiscard]] absl::Status createSandbox(const SandboxRecord& record);
  // Applies `fn` to a copy, checks the state transition, persists, then publishes. The id and
  // name cannot change. Returns the new record.
  [[nodiscard]] absl::StatusOr<SandboxPtr> updateSandbox(absl::string_view id,
                                                         UpdateFn<SandboxRecord> fn);
  // Deletes the sandbox and releases its name, atomically. OK if it does not exist;
  // FailedPrecondition while it still has containers.
  [[nodiscard]] absl::Status deleteSandbox(absl::string_view id);
  [[nodiscard]] absl::StatusOr<SandboxPtr> getSandbox(absl::string_view id) const;
  std::vector<SandboxPtr> listSandboxes() const;  // by id
  // The full id for an id or a unique id prefix.
  [[nodiscard]] absl::StatusOr<std::string> resolveSandboxId(absl::string_view prefix) const;

  // --- Containers ---
  // Inserts `record` (its sandbox must exist) and reserves record.name, atomically.
  [[nodiscard]] absl::Status createContainer(const ContainerRecord& record);
  // As updateSandbox; the id, name and sandbox id cannot change.
  [[nodiscard]] absl::StatusOr<ContainerPtr> updateContainer(absl::string_view id,
                                                             UpdateFn<ContainerRecord> fn);
  // Deletes the container and releases its name, atomically. OK if it does not exist.
  [[nodiscard]] absl::Status deleteContainer(absl::string_view id);
  [[nodiscard]] absl::StatusOr<ContainerPtr> getContainer(absl::string_view id) const;
  std::vector<ContainerPtr> listContainers() const;  // by id
  std::vector<ContainerPtr> listContainers(absl::string_view sandbox_id) const;
  [[nodiscard]] absl::StatusOr<std::string> resolveContainerId(absl::string_view prefix) const;

  // --- Images ---
  // Inserts or replaces the image and points each of `refs` (tags, digests) at it, moving a
  // ref away from another image if needed — that image is kept, even with no refs left.
  [[nodiscard]] absl::Status putImage(const ImageRecord& record,
                                      const std::vector<std::string>& refs);
  // Points `ref` at an existing image (moving it from another image if needed).
  [[nodiscard]] absl::Status addImageRef(absl::string_view ref, absl::string_view image_id);
  // OK if `ref` does not exist.
  [[nodiscard]] absl::Status removeImageRef(absl::string_view ref);
  // Deletes the image and all refs to it, atomically. OK if it does not exist.
  [[nodiscard]] absl::Status deleteImage(absl::string_view id);
  [[nodiscard]] absl::StatusOr<ImagePtr> getImage(absl::string_view id) const;
  [[nodiscard]] absl::StatusOr<ImagePtr> getImageByRef(absl::string_view ref) const;
  std::vector<ImagePtr> listImages() const;                        // by id
  std::vector<std::string> imageRefs(absl::string_view id) const;  // sorted; empty if none

  // --- Snapshots ---
  // A non-empty parent must exist and be committed.
  [[nodiscard]] absl::Status createSnapshot(const SnapshotRecord& record);
  // As updateSandbox, for the data fields (size, labels, …); key, parent and kind cannot
  // change.
  [[nodiscard]] absl::StatusOr<SnapshotPtr> updateSnapshot(absl::string_view key,
                                                           UpdateFn<SnapshotRecord> fn);
  // OK if it does not exist; FailedPrecondition while other snapshots have it as parent.
  [[nodiscard]] absl::Status deleteSnapshot(absl::string_view key);
  [[nodiscard]] absl::StatusOr<SnapshotPtr> getSnapshot(absl::string_view key) const;
  std::vector<SnapshotPtr> listSnapshots() const;  // by key

  // --- Name reservations (pod sandbox and container names) ---
  // AlreadyExists naming the current owner, unless `owner` already holds it (then OK).
  [[nodiscard]] absl::Status reserveName(absl::string_view name, absl::string_view owner);
  // OK if not reserved. FailedPrecondition if the name belongs to an existing sandbox or
  // container: deleting that object releases it.
  [[nodiscard]] absl::Status releaseName(absl::string_view name);
  [[nodiscard]] absl::StatusOr<std::string> nameOwner(absl::string_view name) const;
  std::vector<std::pair<std::string, std::string>> listNames() const;  // (name, owner) by name

 private:
  explicit Store(std::unique_ptr<Database> db);

  // Start-up: reads every table into the indexes.
  [[nodiscard]] absl::Status load();

  // Runs `body` in one transaction and commits; on any error the transaction is rolled back
  // and the error is returned prefixed with `what`.
  [[nodiscard]] absl::Status transact(absl::string_view what,
                                      absl::FunctionRef<absl::Status(Database&)> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Whether `owner` already holds `name`; AlreadyExists naming the holder if another does.
  [[nodiscard]] absl::StatusOr<bool> nameHeld(absl::string_view name, absl::string_view owner) const
      ABSL_SHARED_LOCKS_REQUIRED(mem_mu_);

  // The in-memory indexes: the whole store, rebuilt from the database at start-up. Sorted
  // maps where prefix lookup or ordered listing needs them.
  struct Index {
    absl::btree_map<std::string, SandboxPtr> sandboxes;
    absl::btree_map<std::string, ContainerPtr> containers;
    // sandbox id → ids of its containers
    absl::flat_hash_map<std::string, absl::btree_set<std::string>> sandbox_containers;
    absl::btree_map<std::string, ImagePtr> images;
    absl::flat_hash_map<std::string, std::string> image_refs;  // ref → image id
    // image id → refs pointing at it
    absl::flat_hash_map<std::string, absl::btree_set<std::string>> refs_by_image;
    absl::btree_map<std::string, SnapshotPtr> snapshots;
    absl::btree_map<std::string, std::string> names;  // name → owner id
  };

  // Moves `ref` to `image_id` (or drops it, if `image_id` is empty) in `index`.
  static void indexImageRef(Index& index, const std::string& ref, const std::string& image_id);

  // Serialises writers; held across each SQLite transaction.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mem_mu_);
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(write_mu_);
  RecordObserver* observer_ ABSL_GUARDED_BY(write_mu_) = nullptr;

  // Guards index_; held only to read it or to publish a committed change.
  mutable absl::Mutex mem_mu_;
  Index index_ ABSL_GUARDED_BY(mem_mu_);
};

}  // namespace berth::store
