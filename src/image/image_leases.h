// What keeps blobs and snapshots from garbage collection while an operation uses them, without
// a lock held across the operation: a pull or a container creation leases each blob and layer
// before it fetches, unpacks or mounts it, and a collection claims what it is about to remove.
#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace berth::image {

// Thread-safe. A key is leased or claimed, never both: a lease waits while a collection
// removes its key (a bounded local removal), and a claim fails while any lease holds it. A
// collection never waits, so an operation and a collection cannot wait for each other.
class ImageLeases {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept;
    Lease& operator=(Lease&& o) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { release(); }

    // Holds `key` until this lease ends. Call it before the thing named is acquired (fetched,
    // unpacked, mounted): a collection that claimed it first is waited for, one that comes
    // later leaves it alone.
    void add(const std::string& key);
    // Gives back every key.
    void release();

   private:
    friend class ImageLeases;
    explicit Lease(ImageLeases* owner) : owner_(owner) {}
    ImageLeases* owner_ = nullptr;
    std::vector<std::string> keys_;
  };

  // Claims of one collection, given back when it ends.
  class Claims {
   public:
    explicit Claims(ImageLeases& owner) : owner_(owner) {}
    Claims(const Claims&) = delete;
    Claims& operator=(const Claims&) = delete;
    ~Claims();
    // True, and `key` is ours until the end, unless a lease holds it (or another collection).
    bool claim(const std::string& key);

   private:
    ImageLeases& owner_;
    std::vector<std::string> keys_;
  };

  Lease lease() { return Lease(this); }

  static std::string blobKey(const std::string& digest) { return "blob/" + digest; }
  static std::string snapshotKey(const std::string& key) { return "snapshot/" + key; }

  // For tests: how many leases hold `key`.
  int holders(const std::string& key);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> held_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> claimed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::image
