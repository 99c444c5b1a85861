// The records kept by the metadata store: plain values, free of CRI/protobuf types (CRI
// configs travel as opaque serialized bytes).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/state.h"

namespace berth::store {

using Labels = std::map<std::string, std::string>;

struct SandboxMetadata {
  std::string name;
  std::string uid;
  std::string ns;  // Kubernetes namespace
  uint32_t attempt = 0;

  bool operator==(const SandboxMetadata&) const = default;
};

struct SandboxRecord {
  std::string id;    // 64 hex digits
  std::string name;  // reserved name: <name>_<namespace>_<uid>_<attempt>
  SandboxMetadata metadata;
  SandboxState state = SandboxState::kCreated;
  std::string runtime_handler;
  std::string sandboxer;  // name of the sandbox controller that owns it
  int64_t created_at_ns = 0;
  int64_t exited_at_ns = 0;
  int32_t exit_code = 0;
  int32_t pid = 0;  // pause process
  std::string netns_path;
  std::string userns_path;       // the pod's own user namespace, pinned; empty: the host's
  std::vector<std::string> ips;  // first is the primary IP
  Labels labels;
  Labels annotations;
  std::string config_bytes;  // serialized runtime.v1.PodSandboxConfig
  std::string spec_json;     // OCI runtime spec of the pause container
  std::string cni_result_json;
  // What the sandbox controller makes for the pod, named in the record before it is made, so
  // that a crash at any instant leaves it reachable (podsandbox: the pod dir's shim and bundle,
  // the sandbox image's snapshot).
  std::string shim_dir;
  std::string bundle_dir;
  std::string image;         // the sandbox image; empty: berth's built-in pause rootfs
  std::string snapshot_key;  // the sandbox image's rootfs snapshot
  std::string snapshotter;
  std::string runtime_type;  // of the runtime handler, for verbose info
  std::vector<std::string> pause_args;
  std::string config_json;         // the pod's config as verbose info shows it
  Pending pending = Pending::kNone;  // the operation under way (see store/state.h)
  bool network_torn_down = false;  // CNI DEL has run for the pod's attachment
  bool netns_closed = false;       // the pod's network namespace is removed

  bool operator==(const SandboxRecord&) const = default;
};

// Whether the pod's network is made: none asked for (host network), or its CNI result is
// recorded. RunPodSandbox sets the network up while its controller starts the pause; the
// write that finds both done ends the pod's Creating.
inline bool networkMade(const SandboxRecord& r) {
  return r.netns_path.empty() || !r.cni_result_json.empty();
}

struct ContainerMetadata {
  std::string name;
  uint32_t attempt = 0;

  bool operator==(const ContainerMetadata&) const = default;
};

struct ContainerRecord {
  std::string id;  // 64 hex digits
  std::string sandbox_id;
  std::string name;  // reserved name: <name>_<sandbox name>_<attempt>
  ContainerMetadata metadata;
  std::string image_ref;  // the image as requested
  std::string image_id;   // "sha256:<config digest>"
  ContainerState state = ContainerState::kCreated;
  int64_t created_at_ns = 0;
  int64_t started_at_ns = 0;
  int64_t finished_at_ns = 0;
  int32_t exit_code = 0;
  std::string reason;
  std::string message;
  int32_t pid = 0;
  std::string log_path;
  std::string snapshot_key;  // rootfs snapshot
  Labels labels;
  Labels annotations;
  std::string config_bytes;  // serialized runtime.v1.ContainerConfig
  std::string spec_json;     // OCI runtime spec
  Pending pending = Pending::kNone;  // the operation under way (see store/state.h)
  std::string rootfs;        // mount point of the rootfs
  uint32_t rootfs_mounts = 1;  // mounts stacked there
  std::string bundle_dir;
  std::string stop_signal;   // from the config or the image ("SIGTERM" when neither says)
  std::string runtime_type;  // of the pod's runtime handler, for verbose info
  std::string snapshotter;
  bool task_deleted = false;  // the runtime no longer knows the container

  bool operator==(const ContainerRecord&) const = default;
};

struct ImageRecord {
  std::string id;  // "sha256:<config digest>"
  std::string manifest_digest;
  std::string media_type;  // of the manifest
  uint64_t size = 0;       // bytes: compressed layers plus config
  std::string config_json;
  std::vector<std::string> layers;  // compressed layer digests, base first
  std::string chain_id;             // chain id of the top layer: the snapshot to start from
  int64_t created_at_ns = 0;
  bool pinned = false;  // never garbage-collected (e.g. the sandbox image)

  bool operator==(const ImageRecord&) const = default;
};

struct SnapshotRecord {
  std::string key;     // committed snapshots are keyed by their chain id
  std::string parent;  // key of a committed snapshot; empty for a base layer
  SnapshotKind kind = SnapshotKind::kActive;
  int64_t created_at_ns = 0;
  uint64_t size = 0;  // bytes used, once known
  // A committed layer: the digest its uncompressed content was checked against while it was
  // unpacked (its diff id). Empty only for layers quarantined by the schema migration.
  std::string diff_id;
  Labels labels;

  bool operator==(const SnapshotRecord&) const = default;
};

// Readers get immutable snapshots: an update publishes a new object and never changes one
// that a reader may hold.
using SandboxPtr = std::shared_ptr<const SandboxRecord>;
using ContainerPtr = std::shared_ptr<const ContainerRecord>;
using ImagePtr = std::shared_ptr<const ImageRecord>;
using SnapshotPtr = std::shared_ptr<const SnapshotRecord>;

}  // namespace berth::store
