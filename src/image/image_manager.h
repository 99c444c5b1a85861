// The image service: pull (registry → content store → snapshots → store), resolve, list,
// remove with garbage collection, and filesystem usage. CRI conversion lives in cri/.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "image/content_store.h"
#include "image/image_leases.h"
#include "image/layer_pipe.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/registry_client.h"
#include "image/snapshot.h"
#include "store/store.h"

namespace berth::image {

// Told about pulls as they happen (berthd's metrics). Called from pulling threads, often:
// implementations must be thread-safe and cheap.
class PullObserver {
 public:
  virtual ~PullObserver() = default;
  // `n` more bytes of a blob arrived from a registry (or a mirror).
  virtual void blobBytes(uint64_t n) = 0;
  // A pull ended, successfully or not, after `took`.
  virtual void pullDone(bool ok, absl::Duration took) = 0;
};

struct ImageManagerOptions {
  int max_concurrent_downloads = 3;
  PullObserver* observer = nullptr;  // may be null; must outlive the manager
  std::string sandbox_image;  // as configured; images with this reference are pinned
  // [image] pinned_images: references (normalised as pulls are) or globs over normalised
  // references ("registry.k8s.io/*"; `*` also matches '/'); matching images are pinned.
  std::vector<std::string> pinned_images;
  std::string os = "linux";
  std::string architecture = "amd64";
  // Bounds on one layer: compressed and uncompressed size, tar entries (ResourceExhausted).
  uint64_t max_layer_bytes = uint64_t{32} << 30;
  uint64_t max_layer_entries = 1'000'000;
};

// Filesystem usage as ImageFsInfo reports it.
struct FsUsage {
  std::string mountpoint;
  uint64_t bytes = 0;
  uint64_t inodes = 0;
  int64_t timestamp_ns = 0;
};

// Progress of one pull in flight, for clients that want to show it (berthctl pull).
struct PullProgress {
  struct Blob {
    std::string digest;
    int64_t total = -1;  // bytes, -1 when the manifest did not say
    uint64_t done = 0;
    bool complete = false;
  };
  std::string reference;
  int64_t started_ns = 0;
  std::vector<Blob> blobs;  // config then layers, once the manifest is known
};

// Thread-safe. Reads (resolve, list, usage) are answered from memory; pull and remove do
// their slow work without holding any lock that readers need, and without waiting for each
// other: what a pull or a container uses is leased (ImageLeases), and garbage collection only
// removes what nobody leases.
//
// Trust: a layer is unpacked only from a blob whose digest was checked, and its uncompressed
// content must hash to the diff id the image config gives it; layer snapshots are keyed by chain
// id (made of those diff ids), so one registry's image can never put its files under another
// image's layers. A pull that fails keeps nothing of its own.
class ImageManager {
 public:
  ImageManager(store::Store& store, ContentStore& content, OverlaySnapshotter& snapshots,
               RegistryClient& registry, ImageManagerOptions options);

  // Pulls `ref` and returns the stored image. Concurrent pulls of the same image share
  // blob downloads and layer unpacking; an image already present costs no blob transfer.
  [[nodiscard]] absl::StatusOr<store::ImagePtr> pull(absl::string_view ref,
                                                     const Credentials& credentials);

  // By reference (tag or digest, familiar or full form) or by id (with or without
  // "sha256:"). NotFound when there is no such image; InvalidArgument for a bad reference.
  [[nodiscard]] absl::StatusOr<store::ImagePtr> resolve(absl::string_view ref_or_id) const;

  std::vector<store::ImagePtr> list() const;
  std::vector<std::string> references(const std::string& image_id) const;
  bool pinned(const store::ImageRecord& image) const;
  // Replaces [image] pinned_images (SIGHUP).
  void setPinnedImages(const std::vector<std::string>& patterns);

  // Removes the image with all its references; unreferenced blobs and snapshots are then
  // collected. Removing an image that does not exist succeeds.
  [[nodiscard]] absl::Status remove(absl::string_view ref_or_id);

  // For a rootfs about to be made from `image`: its layer snapshots exist (layers missing, e.g.
  // quarantined by the schema migration, are unpacked again from stored blobs, checked) and are
  // kept from garbage collection while the returned lease lives. When a blob is gone too, the
  // image is forgotten (kubelet pulls it again) and the error is NotFound naming it.
  [[nodiscard]] absl::StatusOr<ImageLeases::Lease> useImage(const store::ImageRecord& image);

  // The pull in flight for `ref` (same normalisation as pull()), if any.
  std::optional<PullProgress> progress(absl::string_view ref) const;

  // Last measured usage of the image filesystem: image layers, blobs and containers' writable
  // layers. A copy from memory, never a disk walk.
  FsUsage usage() const;
  // Measures it again: called after pulls and removals, and periodically off the request path
  // (berthd's stats collector). Each committed layer is walked once, as it never changes;
  // writable layers and blobs every time.
  void refreshUsage();
  // Removes blobs and committed layers that no image needs and no operation holds; after each
  // pull and removal, and at start-up for what a pull or removal cut off by a crash left.
  [[nodiscard]] absl::Status garbageCollect();

 private:
  struct Tracker;  // progress of one pull, shared with its download threads
  [[nodiscard]] absl::StatusOr<store::ImagePtr> pullOnce(absl::string_view ref,
                                                         const Credentials& credentials);
  [[nodiscard]] absl::StatusOr<std::string> pullLeased(const Reference& ref,
                                                       const Credentials& creds,
                                                       Tracker& tracker,
                                                       ImageLeases::Lease& lease);
  // Fetches `blob` into the content store. With `pipe`, the bytes are also handed to it as
  // they arrive, and the pipe is finished when the blob is stored and checked (or the fetch
  // failed); a blob stored already is handed over as its file. `transferred` (if any) is
  // called when the transfer from the registry is over, before the blob is checked and stored.
  [[nodiscard]] absl::Status fetchBlob(const Reference& ref, const Credentials& creds,
                                       const Descriptor& blob, Tracker* tracker,
                                       RegistryClient::BlobKind kind, LayerPipe* pipe = nullptr,
                                       const std::function<void()>& transferred = nullptr);
  // Downloads layers `from`.. of a chain (up to max_concurrent_downloads transfers at once,
  // started in order) and unpacks each while it downloads, all at once; a layer is committed
  // once the one below it is. `what` names the
  // image in errors.
  [[nodiscard]] absl::Status pullLayers(const Reference& ref, const Credentials& creds,
                                        const std::string& what,
                                        const std::vector<Descriptor>& layers,
                                        const std::vector<std::string>& diff_ids,
                                        const std::vector<std::string>& chain, size_t from,
                                        Tracker* tracker);
  // The unpack of a layer with `diff_id`, within the configured bounds.
  UnpackOptions unpackOptions(const std::string& diff_id) const;
  // A layer's failed unpack, named for the caller (and pointing at the bounds when one was hit).
  static absl::Status layerFailure(absl::Status st, const std::string& what,
                                   const std::string& digest);
  // Unpacks layers `from`.. of a chain onto the snapshot of layer from - 1, each checked
  // against its diff id. `what` names the image in errors.
  [[nodiscard]] absl::Status unpackLayers(const std::string& what,
                                          const std::vector<std::string>& layer_digests,
                                          const std::vector<std::string>& diff_ids,
                                          const std::vector<std::string>& chain, size_t from);

  store::Store& store_;
  ContentStore& content_;
  OverlaySnapshotter& snapshots_;
  RegistryClient& registry_;
  ImageManagerOptions options_;
  std::string pinned_ref_;  // normalised sandbox image reference, or empty
  mutable absl::Mutex pinned_mu_;
  // Normalised pinned_images; swapped whole by setPinnedImages.
  std::shared_ptr<const std::vector<std::string>> pinned_patterns_ ABSL_GUARDED_BY(pinned_mu_);

  // Pulls and containers lease what they use; a collection removes only what it could claim.
  ImageLeases leases_;

  mutable absl::Mutex progress_mu_;
  std::map<std::string, std::shared_ptr<PullProgress>> pulls_ ABSL_GUARDED_BY(progress_mu_);

  // The usage of one committed layer, measured once; created_at tells a layer made again
  // under the same key.
  struct LayerUsage {
    int64_t created_at_ns = 0;
    OverlaySnapshotter::Usage usage;
  };
  mutable absl::Mutex usage_mu_;
  FsUsage usage_ ABSL_GUARDED_BY(usage_mu_);
  std::map<std::string, LayerUsage> layer_usage_ ABSL_GUARDED_BY(usage_mu_);
};

}  // namespace berth::image
