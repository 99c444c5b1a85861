// The content-addressed blob store: image manifests, configs and layers stored under their
// sha256 digest, verified while they stream in and published atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "image/digest.h"

namespace berth::image {

// Layout under root:
//   blobs/sha256/<hex>   complete, verified blobs (0644); a blob is visible only once whole
//   ingest/<hex12>-XXXXXX  blobs being written; renamed into blobs/ when verified, removed on
//                        failure, and swept by open() after a crash
//
// Thread-safe: any thread may call any method. The mutex only guards the table of in-flight
// ingests; no lock is held while a blob streams in (`fill` does network I/O).
//
// The store does not reference-count blobs: callers (the image service) decide what is garbage
// and must not remove a blob that a concurrent pull is relying on.
class ContentStore {
 public:
  // Receives the next chunk of a blob. Chunks must be written in order from one thread at a
  // time. A non-OK result (write error, too many bytes) should be returned by `fill` as is;
  // the ingest fails with it even if `fill` ignores it.
  using Writer = std::function<absl::Status(const char* data, size_t len)>;
  // Produces a blob's bytes by calling `write` for each chunk (e.g. from a registry response).
  using Fill = std::function<absl::Status(const Writer& write)>;

  // Creates root and its sub-directories (0700) if needed and removes stale ingest files left
  // by a crash. Only one store may use a root at a time (berthd holds the root lock).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ContentStore>> open(const std::string& root);

  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;

  // Whether the blob is present (one stat, no verification).
  bool has(const Digest& d) const;
  // The blob's size in bytes. NotFound names the blob.
  [[nodiscard]] absl::StatusOr<uint64_t> size(const Digest& d) const;
  // Where the blob lives (whether or not it is present).
  std::string blobPath(const Digest& d) const;

  // Reads a whole (small) blob and re-checks its digest. NotFound if absent,
  // ResourceExhausted if it is larger than max_bytes, DataLoss if the bytes on disk no longer
  // match the digest.
  [[nodiscard]] absl::StatusOr<std::string> readAll(const Digest& d, uint64_t max_bytes) const;

  // Streams a blob in. Each chunk given to `write` is hashed and written to a temp file under
  // ingest/; when `fill` returns OK the size (if expected_size >= 0) and the sha256 must match
  // `expected`, otherwise DataLoss ("blob sha256:… digest mismatch: got sha256:…"). A verified
  // blob is fsynced and renamed into blobs/ (then the directory is fsynced). On any failure the
  // temp file is removed and nothing becomes visible.
  //
  // If the blob is already present, returns OK without calling `fill` (no transfer).
  // Concurrent ingests of one digest from one `source` share the work: the first caller runs
  // its `fill`, the others wait and return OK once the blob is present. If the first caller
  // fails, exactly one waiter takes over with its own `fill` and the rest wait for that one;
  // so each caller's `fill` runs at most once and a failure is reported only to the caller
  // whose `fill` failed. Ingests from different sources (registries) never wait for each
  // other: a slow or hostile registry that claims a popular digest cannot hold up a pull of it
  // from another one. Both verify; the first to finish publishes, the other finds it there.
  [[nodiscard]] absl::Status ingest(const Digest& expected, int64_t expected_size,
                                    const Fill& fill, absl::string_view source = "");

  // Stores a small blob held in memory (manifests, configs) the same way as ingest().
  [[nodiscard]] absl::Status put(const Digest& expected, absl::string_view data);

  // Removes a blob; a missing blob is not an error.
  [[nodiscard]] absl::Status remove(const Digest& d);

  // Every complete blob, sorted by digest. Walks blobs/ (not a hot path).
  std::vector<Digest> list() const;

  struct Usage {
    uint64_t bytes = 0;   // allocated bytes of all blobs (st_blocks * 512)
    uint64_t inodes = 0;  // number of blob files
  };
  // Disk used by complete blobs (for ImageFsInfo). Walks blobs/.
  Usage usage() const;

  const std::string& root() const { return root_; }

  // How many callers are waiting on the in-flight ingest of `d` from `source` (tests use it
  // to make the wait deterministic).
  size_t waitersForTest(const Digest& d, absl::string_view source = "") const;

 private:
  struct InFlight;
  class FlightGuard;

  explicit ContentStore(std::string root);

  std::string blobDir() const;
  std::string ingestDir() const;
  [[nodiscard]] absl::Status removeStaleIngests() const;
  // Does the actual transfer into a temp file, verification and rename.
  [[nodiscard]] absl::Status ingestOnce(const Digest& expected, int64_t expected_size,
                                        const Fill& fill);
  // Removes the in-flight entry `key` (if it is still `flight`) and wakes its waiters.
  void finishFlight(const std::string& key, const std::shared_ptr<InFlight>& flight,
                    absl::Status result);

  const std::string root_;

  mutable absl::Mutex mu_;
  // State below is protected by mu_.
  // In-flight ingests by digest hex and source. An entry exists from when its leader claims it
  // until the leader's result is known; waiters hold their own reference.
  std::map<std::string, std::shared_ptr<InFlight>> inflight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::image
