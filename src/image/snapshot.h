// The overlayfs snapshotter: one directory per image layer (committed snapshots, keyed by
// chain id) and per container rootfs (active snapshots), with metadata in the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "image/snapshot_mount.h"
#include "image/unpack.h"
#include "store/store.h"

namespace berth::image {

// On-disk layout under root (numeric ids keep overlay option strings short):
//
//   root/<n>/fs      a layer's files (committed) or a container's upperdir (active)
//   root/<n>/work    overlay workdir (active snapshots with a parent)
//   root/<n>.tmp/    a layer being unpacked; renamed to root/<n> when complete
//
// The store record of a snapshot holds <n> in the label kDirLabel. A directory without a record
// is garbage (a crash between the two); cleanup() removes it.
//
// Threads: any thread may call any method. Unpacking, mounting and directory walks run
// without holding mu_.
class OverlaySnapshotter {
 public:
  static constexpr char kDirLabel[] = "berth.snapshot/dir";

  // Opens (creating it if needed) the snapshotter rooted at `root`. `store` must outlive it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> open(
      const std::string& root, store::Store* store);

  // Called by applyLayer once the layer is unpacked, before its parent is looked at: a layer
  // unpacked while the layers below it are still being made waits here for its parent. A
  // non-OK result fails the apply with it.
  using ParentReady = std::function<absl::Status()>;

  // Creates the committed snapshot `key` (a chain id) on `parent_key` ("" for a base layer)
  // by unpacking what `source` yields (`name` names it in errors). `unpack.expected_diff_id`
  // is required: the layer's uncompressed content must hash to it (DataLoss otherwise), and it
  // is kept in the record, so that a committed snapshot only ever holds content checked
  // against the diff id its chain id is made of. `unpack`'s bounds apply (ResourceExhausted).
  // `labels` are stored with the record. The layer is unpacked before its parent is needed;
  // after `parent_ready` (if any) the parent must be a committed, checked layer, and the
  // directories the layer needed but did not list take their owner and mode from it.
  //
  // OK without work (and without reading `source`) if `key` is already committed with that
  // diff id. On failure nothing is left. Concurrent calls for one key unpack once; the others
  // wait and get the same result, without reading their sources either: a source that is not
  // read is told so (LayerSource::unused) before any wait.
  [[nodiscard]] absl::Status applyLayer(const std::string& key, const std::string& parent_key,
                                        LayerSource& source, const std::string& name,
                                        const UnpackOptions& unpack,
                                        const store::Labels& labels = {},
                                        const ParentReady& parent_ready = nullptr);
  // The same for a layer stored at `layer_path`.
  [[nodiscard]] absl::Status applyLayer(const std::string& key, const std::string& parent_key,
                                        const std::string& layer_path, const UnpackOptions& unpack,
                                        const store::Labels& labels = {});

  // Whether a snapshot (active or committed) with this key exists.
  bool has(const std::string& key) const;
  // Whether `key` is a committed layer whose content was checked against its diff id.
  bool hasVerifiedLayer(const std::string& key) const;

  // Creates the writable snapshot `key` on committed `parent_key` ("" for an empty rootfs)
  // and returns the mounts for it. AlreadyExists if `key` exists.
  [[nodiscard]] absl::StatusOr<std::vector<Mount>> prepare(const std::string& key,
                                                           const std::string& parent_key,
                                                           const store::Labels& labels = {});

  // The mounts of an existing snapshot: read-write for an active one, read-only (as view())
  // for a committed one.
  [[nodiscard]] absl::StatusOr<std::vector<Mount>> mounts(const std::string& key) const;

  // Read-only mounts of committed `key` and its parents, e.g. to read an image's /etc/passwd.
  [[nodiscard]] absl::StatusOr<std::vector<Mount>> view(const std::string& key) const;

  // Removes the snapshot and its directory. OK if it does not exist; FailedPrecondition while
  // another snapshot has it as parent.
  [[nodiscard]] absl::Status remove(const std::string& key);

  struct Usage {
    uint64_t bytes = 0;  // allocated blocks, each inode counted once
    uint64_t inodes = 0;
  };
  // The snapshot's own directory (the upperdir of an active snapshot).
  [[nodiscard]] absl::StatusOr<std::string> fsDir(const std::string& key) const;
  // Disk usage of the snapshot's own directory (the upperdir of an active snapshot).
  [[nodiscard]] absl::StatusOr<Usage> usage(const std::string& key) const;
  // Disk usage of everything under root.
  Usage totalUsage() const;

  // Removes directories under root that no record names (left by a crash), and the records
  // whose directory is missing (with their descendants, which cannot work without them).
  [[nodiscard]] absl::Status cleanup();

  const std::string& root() const { return root_; }

 private:
  OverlaySnapshotter(std::string root, store::Store* store, uint64_t next_id);

  // Unpacks and records `key`; the single-flight leader's part of applyLayer.
  [[nodiscard]] absl::Status createCommitted(const std::string& key, const std::string& parent_key,
                                             LayerSource& source, const std::string& name,
                                             const UnpackOptions& unpack,
                                             const store::Labels& labels,
                                             const ParentReady& parent_ready);
  // The fs directories of `key` and its ancestors, top first.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> chainDirs(const std::string& key) const;
  [[nodiscard]] absl::StatusOr<std::string> dirOf(const store::SnapshotRecord& record) const;
  [[nodiscard]] absl::StatusOr<std::vector<Mount>> activeMounts(
      const store::SnapshotRecord& record) const;

  // A fresh directory id, marked busy (cleanup() leaves busy names alone) until release().
  std::string allocate();
  void release(const std::string& id);

  // Whether cleanup() may remove the directory `name` under root, given the ids of all records.
  bool isGarbage(const std::string& name, const absl::flat_hash_set<std::string>& ids) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // An applyLayer in progress, shared by the callers waiting for it.
  struct Flight {
    bool done = false;
    absl::Status status;
  };

  const std::string root_;
  store::Store* const store_;

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> busy_ ABSL_GUARDED_BY(mu_);  // ids being built or removed
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::image
