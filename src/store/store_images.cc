// Store: images with their references, and snapshots. Locking as described in store.h.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "store/internal.h"
#include "store/rows.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace berth::store {

void Store::indexImageRef(Index& index, const std::string& ref, const std::string& image_id) {
  auto it = index.image_refs.find(ref);
  if (it != index.image_refs.end()) {
    if (it->second == image_id) return;
    auto old = index.refs_by_image.find(it->second);
    if (old != index.refs_by_image.end()) {
      old->second.erase(ref);
      if (old->second.empty()) index.refs_by_image.erase(old);
    }
    if (image_id.empty()) {
      index.image_refs.erase(it);
      return;
    }
    it->second = image_id;
  } else {
    if (image_id.empty()) return;
    index.image_refs.emplace(ref, image_id);
  }
  index.refs_by_image[image_id].insert(ref);
}

// --- Images ---

absl::Status Store::putImage(const ImageRecord& record, const std::vector<std::string>& refs) {
  if (record.id.empty()) return absl::InvalidArgumentError("image id must not be empty");
  for (const std::string& ref : refs) {
    if (ref.empty()) return absl::InvalidArgumentError("image reference must not be empty");
  }
  absl::MutexLock w(&write_mu_);
  BERTH_RETURN_IF_ERROR(
      transact(absl::StrCat("put image \"", record.id, "\""), [&](Database& db) -> absl::Status {
        BERTH_RETURN_IF_ERROR(upsertImageRow(db, record));
        for (const std::string& ref : refs) {
          BERTH_RETURN_IF_ERROR(upsertImageRefRow(db, ref, record.id));
        }
        return absl::OkStatus();
      }));
  auto published = std::make_shared<const ImageRecord>(record);
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.images[record.id] = std::move(published);
    for (const std::string& ref : refs) indexImageRef(index_, ref, record.id);
  }
  storeLog()->debug("put image {} with {} reference(s)", record.id, refs.size());
  return absl::OkStatus();
}

absl::Status Store::addImageRef(absl::string_view ref, absl::string_view image_id) {
  if (ref.empty()) return absl::InvalidArgumentError("image reference must not be empty");
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (!index_.images.contains(image_id)) return notFoundError("image", image_id);
    auto it = index_.image_refs.find(ref);
    if (it != index_.image_refs.end() && it->second == image_id) return absl::OkStatus();
  }
  BERTH_RETURN_IF_ERROR(
      transact(absl::StrCat("add image reference \"", ref, "\""),
               [&](Database& db) { return upsertImageRefRow(db, ref, image_id); }));
  absl::WriterMutexLock m(&mem_mu_);
  indexImageRef(index_, std::string(ref), std::string(image_id));
  return absl::OkStatus();
}

absl::Status Store::removeImageRef(absl::string_view ref) {
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (!index_.image_refs.contains(ref)) return absl::OkStatus();
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("remove image reference \"", ref, "\""),
                                 [&](Database& db) { return deleteImageRefRow(db, ref); }));
  absl::WriterMutexLock m(&mem_mu_);
  indexImageRef(index_, std::string(ref), "");
  return absl::OkStatus();
}

absl::Status Store::deleteImage(absl::string_view id) {
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (!index_.images.contains(id)) return absl::OkStatus();
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("delete image \"", id, "\""),
                                 [&](Database& db) { return deleteImageRow(db, id); }));
  {
    absl::WriterMutexLock m(&mem_mu_);
    index_.images.erase(id);
    auto refs = index_.refs_by_image.find(id);
    if (refs != index_.refs_by_image.end()) {
      for (const std::string& ref : refs->second) index_.image_refs.erase(ref);
      index_.refs_by_image.erase(refs);
    }
  }
  storeLog()->debug("deleted image {}", id);
  return absl::OkStatus();
}

absl::StatusOr<ImagePtr> Store::getImage(absl::string_view id) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto it = index_.images.find(id);
  if (it == index_.images.end()) return notFoundError("image", id);
  return it->second;
}

absl::StatusOr<ImagePtr> Store::getImageByRef(absl::string_view ref) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto ref_it = index_.image_refs.find(ref);
  if (ref_it == index_.image_refs.end()) return notFoundError("image", ref);
  auto it = index_.images.find(ref_it->second);
  if (it == index_.images.end()) return notFoundError("image", ref);
  return it->second;
}

std::vector<ImagePtr> Store::listImages() const {
  absl::ReaderMutexLock m(&mem_mu_);
  std::vector<ImagePtr> out;
  out.reserve(index_.images.size());
  for (const auto& [id, record] : index_.images) out.push_back(record);
  return out;
}

std::vector<std::string> Store::imageRefs(absl::string_view id) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto it = index_.refs_by_image.find(id);
  if (it == index_.refs_by_image.end()) return {};
  return {it->second.begin(), it->second.end()};
}

// --- Snapshots ---

absl::Status Store::createSnapshot(const SnapshotRecord& record) {
  if (record.key.empty()) return absl::InvalidArgumentError("snapshot key must not be empty");
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (index_.snapshots.contains(record.key)) return alreadyExistsError("snapshot", record.key);
    if (!record.parent.empty()) {
      auto parent = index_.snapshots.find(record.parent);
      if (parent == index_.snapshots.end()) return notFoundError("parent snapshot", record.parent);
      if (parent->second->kind != SnapshotKind::kCommitted) {
        return absl::FailedPreconditionError(
            absl::StrCat("parent snapshot \"", record.parent, "\" is not committed"));
      }
    }
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("create snapshot \"", record.key, "\""),
                                 [&](Database& db) { return insertSnapshotRow(db, record); }));
  auto published = std::make_shared<const SnapshotRecord>(record);
  absl::WriterMutexLock m(&mem_mu_);
  index_.snapshots[record.key] = std::move(published);
  return absl::OkStatus();
}

absl::StatusOr<SnapshotPtr> Store::updateSnapshot(absl::string_view key,
                                                  UpdateFn<SnapshotRecord> fn) {
  absl::MutexLock w(&write_mu_);
  SnapshotPtr current;
  {
    absl::ReaderMutexLock m(&mem_mu_);
    auto it = index_.snapshots.find(key);
    if (it == index_.snapshots.end()) return notFoundError("snapshot", key);
    current = it->second;
  }
  SnapshotRecord next = *current;
  BERTH_RETURN_IF_ERROR(fn(next));
  if (next.key != current->key || next.parent != current->parent || next.kind != current->kind) {
    return absl::InvalidArgumentError(
        absl::StrCat("update of snapshot \"", key, "\" must not change its key, parent or kind"));
  }
  if (next == *current) return current;
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("update snapshot \"", key, "\""),
                                 [&](Database& db) { return updateSnapshotRow(db, next); }));
  auto published = std::make_shared<const SnapshotRecord>(std::move(next));
  absl::WriterMutexLock m(&mem_mu_);
  index_.snapshots[current->key] = published;
  return published;
}

absl::Status Store::deleteSnapshot(absl::string_view key) {
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock m(&mem_mu_);
    if (!index_.snapshots.contains(key)) return absl::OkStatus();
    size_t children = 0;
    for (const auto& [k, snapshot] : index_.snapshots) children += snapshot->parent == key;
    if (children > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("snapshot \"", key, "\" is the parent of ", children, " snapshot(s)"));
    }
  }
  BERTH_RETURN_IF_ERROR(transact(absl::StrCat("delete snapshot \"", key, "\""),
                                 [&](Database& db) { return deleteSnapshotRow(db, key); }));
  absl::WriterMutexLock m(&mem_mu_);
  index_.snapshots.erase(key);
  return absl::OkStatus();
}

absl::StatusOr<SnapshotPtr> Store::getSnapshot(absl::string_view key) const {
  absl::ReaderMutexLock m(&mem_mu_);
  auto it = index_.snapshots.find(key);
  if (it == index_.snapshots.end()) return notFoundError("snapshot", key);
  return it->second;
}

std::vector<SnapshotPtr> Store::listSnapshots() const {
  absl::ReaderMutexLock m(&mem_mu_);
  std::vector<SnapshotPtr> out;
  out.reserve(index_.snapshots.size());
  for (const auto& [key, record] : index_.snapshots) out.push_back(record);
  return out;
}

}  // namespace berth::store
