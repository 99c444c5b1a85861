// Pull, resolve, remove and garbage collection of images.
#include "image/image_manager.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/crash_point.h"
#include "common/logging.h"
#include "common/random_id.h"
#include "common/status.h"
#include "image/digest.h"
#include "image/manifest.h"

namespace berth::image {
namespace {


std::shared_ptr<spdlog::logger> log() { return logging::get("image"); }

int64_t nowNs() { return absl::ToUnixNanos(absl::Now()); }

}  // namespace

ImageManager::ImageManager(store::Store& store, ContentStore& content,
                           OverlaySnapshotter& snapshots, RegistryClient& registry,
                           ImageManagerOptions options)
    : store_(store),
      content_(content),
      snapshots_(snapshots),
      registry_(registry),
      options_(std::move(options)) {
  if (!options_.sandbox_image.empty()) {
    if (auto ref = parseReference(options_.sandbox_image); ref.ok()) pinned_ref_ = ref->str();
  }
  setPinnedImages(options_.pinned_images);
  usage_.mountpoint = snapshots_.root();
}

// Registers a pull's progress under its reference for progress() and takes it away again.
struct ImageManager::Tracker {
  Tracker(ImageManager& m, std::string ref) : manager(m), key(std::move(ref)) {
    state->reference = key;
    state->started_ns = nowNs();
    absl::MutexLock lock(&manager.progress_mu_);
    manager.pulls_[key] = state;  // a second pull of the same ref shows the latest one
  }
  ~Tracker() {
    absl::MutexLock lock(&manager.progress_mu_);
    if (auto it = manager.pulls_.find(key); it != manager.pulls_.end() && it->second == state) {
      manager.pulls_.erase(it);
    }
  }
  void add(const std::string& digest, int64_t total) {
    absl::MutexLock lock(&manager.progress_mu_);
    state->blobs.push_back({.digest = digest, .total = total});
  }
  void update(const std::string& digest, uint64_t done, bool complete) {
    absl::MutexLock lock(&manager.progress_mu_);
    for (auto& b : state->blobs) {
      if (b.digest != digest) continue;
      b.done = done;
      b.complete = b.complete || complete;
    }
  }

  ImageManager& manager;
  std::string key;
  std::shared_ptr<PullProgress> state = std::make_shared<PullProgress>();
};

absl::Status ImageManager::fetchBlob(const Reference& ref, const Credentials& creds,
                                     const Descriptor& blob, Tracker* tracker,
                                     RegistryClient::BlobKind kind, LayerPipe* pipe,
                                     const std::function<void()>& transferred) {
  absl::StatusOr<Digest> d = Digest::parse(blob.digest);
  if (!d.ok()) {
    if (pipe != nullptr) pipe->finish(d.status());
    return d.status();
  }
  if (tracker != nullptr) tracker->add(blob.digest, blob.size);
  uint64_t counted = 0;  // bytes of this blob already reported to the observer
  bool streamed = false;  // whether this call's transfer ran (else the blob was there)
  // The download stops at the descriptor's size (parsing requires one).
  absl::Status st = content_.ingest(
      *d, blob.size,
      [&](const ContentStore::Writer& write) {
        streamed = true;
        ContentStore::Writer sink = write;
        if (pipe != nullptr) {
          sink = [&](const char* data, size_t len) {
            BERTH_RETURN_IF_ERROR(write(data, len));
            return pipe->write(data, len);
          };
        }
        absl::Status got = registry_.fetchBlob(
            ref, blob.digest, creds, sink,
            [&](uint64_t done) {
              if (tracker != nullptr) tracker->update(blob.digest, done, false);
              if (options_.observer != nullptr && done > counted) {
                options_.observer->blobBytes(done - counted);
                counted = done;
              }
            },
            kind);
        if (transferred) transferred();
        return got;
      },
      ref.domain);
  if (pipe != nullptr) {
    if (st.ok() && !streamed) {
      pipe->finishFromFile(content_.blobPath(*d));
    } else {
      pipe->finish(st);
    }
  }
  if (st.ok() && tracker != nullptr) {
    tracker->update(blob.digest, static_cast<uint64_t>(blob.size), true);
  }
  return st;
}

std::optional<PullProgress> ImageManager::progress(absl::string_view ref_text) const {
  auto ref = parseReference(ref_text);
  if (!ref.ok()) return std::nullopt;
  absl::MutexLock lock(&progress_mu_);
  auto it = pulls_.find(ref->str());
  if (it == pulls_.end()) return std::nullopt;
  return *it->second;
}

absl::Status ImageManager::pullLayers(const Reference& ref, const Credentials& creds,
                                      const std::string& what,
                                      const std::vector<Descriptor>& layers,
                                      const std::vector<std::string>& diff_ids,
                                      const std::vector<std::string>& chain, size_t from,
                                      Tracker* tracker) {
  // Each layer has a download thread and an unpack thread, fed by the download through a
  // pipe. A layer unpacked before the one below it waits for that one before it commits.
  struct Layer {
    LayerPipe pipe;
    std::thread unpacker;
    absl::Status status;  // the unpack's, once `done`
    absl::Notification done;
    absl::Status fetched;  // the download's
  };
  const size_t n = chain.size() - from;
  std::vector<std::unique_ptr<Layer>> jobs;
  for (size_t k = 0; k < n; ++k) jobs.push_back(std::make_unique<Layer>());
  auto unpack = [&](size_t k) {
    const size_t i = from + k;
    auto parent_ready = [&]() -> absl::Status {
      if (k == 0) return absl::OkStatus();
      jobs[k - 1]->done.WaitForNotification();
      if (jobs[k - 1]->status.ok()) return absl::OkStatus();
      return absl::AbortedError(absl::StrCat("layer ", layers[i - 1].digest, " below it failed"));
    };
    absl::Status st =
        snapshots_.applyLayer(chain[i], i == 0 ? "" : chain[i - 1], jobs[k]->pipe, layers[i].digest,
                              unpackOptions(diff_ids[i]), {}, parent_ready);
    jobs[k]->pipe.close();
    jobs[k]->status = st;
    jobs[k]->done.Notify();
  };

  // Transfers: at most max_concurrent_downloads at once, granted in layer order. A slot is
  // held for the transfer only: a blob's fsync and publication keep no other layer waiting.
  // The first failure stops the layers not yet granted one.
  absl::Mutex mu;
  size_t turn = 0;  // the next layer to be granted a slot
  int free_slots = std::max(1, options_.max_concurrent_downloads);
  absl::Status first_error;
  auto download = [&](size_t k) {
    Layer& job = *jobs[k];
    {
      absl::MutexLock lock(&mu);
      auto granted = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return turn == k && (free_slots > 0 || !first_error.ok());
      };
      mu.Await(absl::Condition(&granted));
      ++turn;
      if (!first_error.ok()) {
        job.fetched = absl::AbortedError("the pull stopped: a layer below failed");
        job.pipe.finish(job.fetched);
        return;
      }
      --free_slots;
    }
    bool holding = true;
    auto transferred = [&] {
      if (!holding) return;
      holding = false;
      absl::MutexLock lock(&mu);
      ++free_slots;
    };
    absl::Status st = fetchBlob(ref, creds, layers[from + k], tracker,
                                RegistryClient::BlobKind::kLayer, &job.pipe, transferred);
    transferred();
    job.fetched = st;
    if (!st.ok()) {
      absl::MutexLock lock(&mu);
      if (first_error.ok()) first_error = st;
    }
  };
  std::vector<std::thread> downloads;
  for (size_t k = 0; k < n; ++k) {
    jobs[k]->unpacker = std::thread(unpack, k);
    downloads.emplace_back(download, k);
  }
  for (auto& t : downloads) t.join();
  crashPoint("image.pull.after_layers");
  // Every layer's pipe is finished: its unpack ends.
  for (auto& job : jobs) job->unpacker.join();
  // The lowest layer that failed holds the cause (a layer above one that failed fails too);
  // a download that failed explains its unpack's failure (bytes that were not the blob).
  for (size_t k = 0; k < n; ++k) {
    const std::string& digest = layers[from + k].digest;
    if (!jobs[k]->fetched.ok()) return annotate(jobs[k]->fetched, absl::StrCat("layer ", digest));
    if (!jobs[k]->status.ok()) return layerFailure(jobs[k]->status, what, digest);
  }
  return first_error;
}

absl::StatusOr<store::ImagePtr> ImageManager::pull(absl::string_view ref_text,
                                                   const Credentials& creds) {
  absl::Time start = absl::Now();
  absl::StatusOr<store::ImagePtr> image = pullOnce(ref_text, creds);
  if (options_.observer != nullptr) options_.observer->pullDone(image.ok(), absl::Now() - start);
  return image;
}

absl::StatusOr<store::ImagePtr> ImageManager::pullOnce(absl::string_view ref_text,
                                                       const Credentials& creds) {
  BERTH_ASSIGN_OR_RETURN(Reference ref, parseReference(ref_text));
  absl::Time start = absl::Now();
  Tracker tracker(*this, ref.str());
  ImageLeases::Lease lease = leases_.lease();
  absl::StatusOr<std::string> id = pullLeased(ref, creds, tracker, lease);
  lease.release();  // once recorded, the image itself keeps what it needs
  if (!id.ok()) {
    // Nothing of a failed pull is kept: what it fetched and no image needs is collected.
    if (auto gc = garbageCollect(); !gc.ok()) {
      log()->warn("garbage collection after the failed pull of {}: {}", ref.str(), gc.message());
    }
    return id.status();
  }
  log()->info("pulled {} as {} in {}", ref.str(), *id, absl::FormatDuration(absl::Now() - start));
  if (auto gc = garbageCollect(); !gc.ok()) log()->warn("garbage collection: {}", gc.message());
  refreshUsage();
  return store_.getImage(*id);
}

absl::StatusOr<std::string> ImageManager::pullLeased(const Reference& ref,
                                                     const Credentials& creds, Tracker& tracker,
                                                     ImageLeases::Lease& lease) {
  const std::string what = absl::StrCat("image \"", ref.str(), "\"");
  // Every blob and snapshot is leased before it is stored or looked for, so that a collection
  // running meanwhile never removes it under this pull.
  BERTH_ASSIGN_OR_RETURN(Manifest top, registry_.fetchManifest(ref, creds));
  BERTH_ASSIGN_OR_RETURN(Digest top_digest, Digest::parse(top.digest));
  lease.add(ImageLeases::blobKey(top.digest));
  BERTH_RETURN_IF_ERROR(content_.put(top_digest, top.body));
  Manifest chosen = top;
  if (isIndex(top.media_type, top.body)) {
    auto entries = parseIndex(top.body);
    if (!entries.ok()) return annotate(entries.status(), what);
    auto entry = choosePlatform(*entries, options_.os, options_.architecture);
    if (!entry.ok()) return annotate(entry.status(), what);
    BERTH_ASSIGN_OR_RETURN(chosen, registry_.fetchManifestByDigest(ref, entry->digest, creds));
    BERTH_ASSIGN_OR_RETURN(Digest d, Digest::parse(chosen.digest));
    lease.add(ImageLeases::blobKey(chosen.digest));
    BERTH_RETURN_IF_ERROR(content_.put(d, chosen.body));
  }
  auto manifest = parseManifest(chosen.body);
  if (!manifest.ok()) return annotate(manifest.status(), what);
  crashPoint("image.pull.after_manifest");

  if (static_cast<uint64_t>(manifest->config.size) > kMaxImageJsonBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": its config is ", manifest->config.size,
                     " bytes, more than the limit of ", kMaxImageJsonBytes));
  }
  for (const Descriptor& l : manifest->layers) {
    if (static_cast<uint64_t>(l.size) > options_.max_layer_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what, ": layer ", l.digest, " is ", l.size, " bytes, more than the limit of ",
          options_.max_layer_bytes, " (image.max_layer_bytes)"));
    }
  }
  lease.add(ImageLeases::blobKey(manifest->config.digest));
  BERTH_RETURN_IF_ERROR(
      fetchBlob(ref, creds, manifest->config, &tracker, RegistryClient::BlobKind::kSmall));
  BERTH_ASSIGN_OR_RETURN(Digest config_digest, Digest::parse(manifest->config.digest));
  BERTH_ASSIGN_OR_RETURN(std::string config_body,
                         content_.readAll(config_digest, kMaxImageJsonBytes));
  auto config = parseImageConfig(config_body);
  if (!config.ok()) return annotate(config.status(), what);
  if (config->diff_ids.size() != manifest->layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": manifest has ",
                                                   manifest->layers.size(),
                                                   " layers but its config lists ",
                                                   config->diff_ids.size()));
  }
  std::vector<std::string> chain = chainIds(config->diff_ids);
  std::vector<std::string> layer_digests;
  for (const Descriptor& l : manifest->layers) {
    layer_digests.push_back(l.digest);
    lease.add(ImageLeases::blobKey(l.digest));
  }
  for (const std::string& c : chain) lease.add(ImageLeases::snapshotKey(c));

  // Only layers above the highest checked snapshot are downloaded: present chains cost nothing.
  size_t first_missing = chain.size();
  for (size_t i = chain.size(); i-- > 0;) {
    if (snapshots_.hasVerifiedLayer(chain[i])) break;
    first_missing = i;
  }
  BERTH_RETURN_IF_ERROR(pullLayers(ref, creds, what, manifest->layers, config->diff_ids, chain,
                                   first_missing, &tracker));
  crashPoint("image.pull.after_unpack");

  store::ImageRecord record;
  record.id = config_digest.str();
  record.manifest_digest = chosen.digest;
  record.media_type = chosen.media_type;
  record.size = static_cast<uint64_t>(manifest->config.size);
  for (const auto& l : manifest->layers) {
    record.size += static_cast<uint64_t>(l.size);
    record.layers.push_back(l.digest);
  }
  record.config_json = config_body;
  record.chain_id = chain.empty() ? "" : chain.back();
  record.created_at_ns = nowNs();
  if (auto existing = store_.getImage(record.id); existing.ok()) {
    record.created_at_ns = (*existing)->created_at_ns;
  }
  std::vector<std::string> refs;
  if (!ref.tag.empty()) refs.push_back(ref.withTag());
  refs.push_back(ref.withDigest(top.digest));
  record.pinned = !pinned_ref_.empty() &&
                  std::find(refs.begin(), refs.end(), pinned_ref_) != refs.end();

  // A tag that moves leaves its old image; an image with no reference left is dropped.
  std::set<std::string> previous;
  for (const auto& r : refs) {
    if (auto old = store_.getImageByRef(r); old.ok() && (*old)->id != record.id) {
      previous.insert((*old)->id);
    }
  }
  BERTH_RETURN_IF_ERROR(store_.putImage(record, refs));
  crashPoint("image.pull.after_record");
  for (const auto& old : previous) {
    if (store_.imageRefs(old).empty()) {
      log()->info("image {} lost its last reference to {}; removing it", old, ref.str());
      BERTH_RETURN_IF_ERROR(store_.deleteImage(old));
    }
  }
  return record.id;
}

UnpackOptions ImageManager::unpackOptions(const std::string& diff_id) const {
  return {.expected_diff_id = diff_id,
          .max_tar_bytes = options_.max_layer_bytes,
          .max_entries = options_.max_layer_entries};
}

absl::Status ImageManager::layerFailure(absl::Status st, const std::string& what,
                                        const std::string& digest) {
  if (absl::IsResourceExhausted(st)) {
    st = annotate(st, "see image.max_layer_bytes and image.max_layer_entries");
  }
  return annotate(st, absl::StrCat(what, ": layer ", digest));
}

absl::Status ImageManager::unpackLayers(const std::string& what,
                                        const std::vector<std::string>& layer_digests,
                                        const std::vector<std::string>& diff_ids,
                                        const std::vector<std::string>& chain, size_t from) {
  for (size_t i = from; i < chain.size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Digest layer, Digest::parse(layer_digests[i]));
    absl::Status st = snapshots_.applyLayer(chain[i], i == 0 ? "" : chain[i - 1],
                                            content_.blobPath(layer), unpackOptions(diff_ids[i]));
    if (!st.ok()) return layerFailure(st, what, layer.str());
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageLeases::Lease> ImageManager::useImage(const store::ImageRecord& image) {
  const std::string what = absl::StrCat("image ", image.id);
  ImageLeases::Lease lease = leases_.lease();
  if (image.chain_id.empty()) return lease;  // no layers: an empty rootfs
  auto config = parseImageConfig(image.config_json);
  if (!config.ok()) return annotate(config.status(), what);
  std::vector<std::string> chain = chainIds(config->diff_ids);
  if (chain.empty() || chain.back() != image.chain_id || chain.size() != image.layers.size()) {
    return absl::InternalError(absl::StrCat(what, ": stored record is inconsistent"));
  }
  for (const std::string& c : chain) lease.add(ImageLeases::snapshotKey(c));
  size_t first_missing = chain.size();
  for (size_t i = chain.size(); i-- > 0;) {
    if (snapshots_.hasVerifiedLayer(chain[i])) break;
    first_missing = i;
  }
  if (first_missing == chain.size()) return lease;
  for (size_t i = first_missing; i < chain.size(); ++i) {
    lease.add(ImageLeases::blobKey(image.layers[i]));
    BERTH_ASSIGN_OR_RETURN(Digest layer, Digest::parse(image.layers[i]));
    if (content_.has(layer)) continue;
    // Neither a checked snapshot nor the blob to make one: the image must be pulled again.
    lease.release();
    log()->warn("{}: layer {} has no checked snapshot and its blob is not stored; forgetting the "
                "image so that it is pulled again", what, layer.str());
    BERTH_RETURN_IF_ERROR(store_.deleteImage(image.id));
    return absl::NotFoundError(absl::StrCat(
        what, " must be pulled again: its layer ", layer.str(), " is no longer stored"));
  }
  log()->info("{}: unpacking {} layer(s) again from stored blobs, checked against their diff ids",
              what, chain.size() - first_missing);
  BERTH_RETURN_IF_ERROR(unpackLayers(what, image.layers, config->diff_ids, chain, first_missing));
  return lease;
}

absl::StatusOr<store::ImagePtr> ImageManager::resolve(absl::string_view text) const {
  if (text.empty()) return absl::InvalidArgumentError("image reference must not be empty");
  absl::string_view hex = text;
  if (absl::StartsWith(hex, "sha256:")) hex.remove_prefix(7);
  if (isObjectId(std::string_view(hex.data(), hex.size()))) {
    auto image = store_.getImage(absl::StrCat("sha256:", hex));
    if (image.ok()) return image;
    // A 64-hex string could also be a repository name; fall through to that reading.
    if (absl::StartsWith(text, "sha256:")) {
      return absl::NotFoundError(absl::StrCat("image \"", text, "\" not found"));
    }
  }
  BERTH_ASSIGN_OR_RETURN(Reference ref, parseReference(text));
  auto image = store_.getImageByRef(ref.str());
  if (!image.ok()) return absl::NotFoundError(absl::StrCat("image \"", text, "\" not found"));
  return image;
}

std::vector<store::ImagePtr> ImageManager::list() const { return store_.listImages(); }

std::vector<std::string> ImageManager::references(const std::string& image_id) const {
  return store_.imageRefs(image_id);
}

void ImageManager::setPinnedImages(const std::vector<std::string>& patterns) {
  auto next = std::make_shared<std::vector<std::string>>();
  for (const std::string& p : patterns) {
    // A plain reference is matched as pulls normalise it ("busybox" → docker.io/library/…).
    auto ref = p.find_first_of("*?[") == std::string::npos ? parseReference(p)
                                                           : absl::StatusOr<Reference>();
    next->push_back(ref.ok() ? ref->str() : p);
  }
  absl::MutexLock lock(&pinned_mu_);
  pinned_patterns_ = std::move(next);
}

bool ImageManager::pinned(const store::ImageRecord& image) const {
  if (image.pinned) return true;
  std::shared_ptr<const std::vector<std::string>> patterns;
  {
    absl::MutexLock lock(&pinned_mu_);
    patterns = pinned_patterns_;
  }
  if (pinned_ref_.empty() && patterns->empty()) return false;
  auto refs = store_.imageRefs(image.id);
  if (!pinned_ref_.empty() && std::find(refs.begin(), refs.end(), pinned_ref_) != refs.end()) {
    return true;
  }
  for (const std::string& pattern : *patterns) {
    for (const std::string& r : refs) {
      if (::fnmatch(pattern.c_str(), r.c_str(), 0) == 0) return true;
    }
  }
  return false;
}

absl::Status ImageManager::remove(absl::string_view ref_or_id) {
  auto image = resolve(ref_or_id);
  if (absl::IsNotFound(image.status())) return absl::OkStatus();
  if (!image.ok()) return image.status();
  BERTH_RETURN_IF_ERROR(store_.deleteImage((*image)->id));
  crashPoint("image.remove.after_record");
  log()->info("removed image {} ({})", (*image)->id, ref_or_id);
  BERTH_RETURN_IF_ERROR(garbageCollect());
  refreshUsage();
  return absl::OkStatus();
}

namespace {

// What the stored images need: their blobs and the snapshots of their chains.
struct Needed {
  std::set<std::string> blobs;
  std::set<std::string> snapshots;
};

Needed neededByImages(const store::Store& store) {
  Needed n;
  for (const auto& image : store.listImages()) {
    n.blobs.insert(image->id);
    n.blobs.insert(image->manifest_digest);
    n.blobs.insert(image->layers.begin(), image->layers.end());
    for (const auto& r : store.imageRefs(image->id)) {
      if (auto at = r.find('@'); at != std::string::npos) n.blobs.insert(r.substr(at + 1));
    }
    if (auto config = parseImageConfig(image->config_json); config.ok()) {
      for (const auto& c : chainIds(config->diff_ids)) n.snapshots.insert(c);
    } else {
      n.snapshots.insert(image->chain_id);
    }
  }
  return n;
}

}  // namespace

absl::Status ImageManager::garbageCollect() {
  // Candidates are what no image needs; each is claimed unless an operation leases it. What
  // the images need is read again after the claims: an operation that recorded an image held
  // its leases until then, so its image is seen, and what it needs is left alone.
  ImageLeases::Claims claims(leases_);
  Needed needed = neededByImages(store_);
  std::vector<Digest> blobs;
  for (const auto& d : content_.list()) {
    if (!needed.blobs.contains(d.str()) && claims.claim(ImageLeases::blobKey(d.str()))) {
      blobs.push_back(d);
    }
  }
  std::set<std::string> snapshots;
  for (const auto& s : store_.listSnapshots()) {
    if (s->kind == store::SnapshotKind::kCommitted && !needed.snapshots.contains(s->key) &&
        claims.claim(ImageLeases::snapshotKey(s->key))) {
      snapshots.insert(s->key);
    }
  }
  needed = neededByImages(store_);
  for (const auto& d : blobs) {
    if (needed.blobs.contains(d.str())) continue;
    BERTH_RETURN_IF_ERROR(content_.remove(d));
  }
  // Children before parents; one still used (by a container's writable snapshot, or as
  // another chain's parent) is refused and kept.
  for (bool progress = true; progress;) {
    progress = false;
    for (auto it = snapshots.begin(); it != snapshots.end();) {
      if (needed.snapshots.contains(*it)) {
        it = snapshots.erase(it);
        continue;
      }
      absl::Status st = snapshots_.remove(*it);
      if (st.ok()) {
        progress = true;
        it = snapshots.erase(it);
      } else if (absl::IsFailedPrecondition(st)) {
        ++it;
      } else {
        return st;
      }
    }
  }
  return absl::OkStatus();
}

FsUsage ImageManager::usage() const {
  absl::MutexLock lock(&usage_mu_);
  return usage_;
}

void ImageManager::refreshUsage() {
  // Measured without any lock held, then published. Pulls, removals and the periodic refresh
  // may measure at once: the measurement started last wins.
  const int64_t started = nowNs();
  std::map<std::string, LayerUsage> known;
  {
    absl::MutexLock lock(&usage_mu_);
    known = layer_usage_;
  }
  std::map<std::string, LayerUsage> layers;
  FsUsage u;
  u.mountpoint = snapshots_.root();
  u.timestamp_ns = started;
  for (const store::SnapshotPtr& s : store_.listSnapshots()) {
    OverlaySnapshotter::Usage su;
    auto it = known.find(s->key);
    if (s->kind == store::SnapshotKind::kCommitted && it != known.end() &&
        it->second.created_at_ns == s->created_at_ns) {
      su = it->second.usage;
    } else {
      absl::StatusOr<OverlaySnapshotter::Usage> measured = snapshots_.usage(s->key);
      if (!measured.ok()) continue;  // removed meanwhile
      su = *measured;
    }
    if (s->kind == store::SnapshotKind::kCommitted) {
      layers[s->key] = LayerUsage{.created_at_ns = s->created_at_ns, .usage = su};
    }
    u.bytes += su.bytes;
    u.inodes += su.inodes;
  }
  ContentStore::Usage blobs = content_.usage();
  u.bytes += blobs.bytes;
  u.inodes += blobs.inodes;
  absl::MutexLock lock(&usage_mu_);
  if (usage_.timestamp_ns > started) return;
  usage_ = u;
  layer_usage_ = std::move(layers);
}

}  // namespace berth::image
