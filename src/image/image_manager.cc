// Pull, resolve, remove and garbage collection of images.
#include "image/image_manager.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "image/digest.h"
#include "image/manifest.h"

namespace berth::image {
namespace {

constexpr uint64_t kMaxJsonBlob = 16 << 20;  // manifests and configs are small; refuse more

std::shared_ptr<spdlog::logger> log() { return logging::get("image"); }

bool isHex64(absl::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

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
                                     const std::string& digest, int64_t size, Tracker* tracker) {
  BERTH_ASSIGN_OR_RETURN(Digest d, Digest::parse(digest));
  if (tracker != nullptr) tracker->add(digest, size);
  uint64_t counted = 0;  // bytes of this blob already reported to the observer
  absl::Status st = content_.ingest(d, size, [&](const ContentStore::Writer& write) {
    return registry_.fetchBlob(ref, digest, creds, write, [&](uint64_t done) {
      if (tracker != nullptr) tracker->update(digest, done, false);
      if (options_.observer != nullptr && done > counted) {
        options_.observer->blobBytes(done - counted);
        counted = done;
      }
    });
  });
  if (st.ok() && tracker != nullptr) {
    tracker->update(digest, size >= 0 ? static_cast<uint64_t>(size) : 0, true);
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

absl::Status ImageManager::downloadLayers(const Reference& ref, const Credentials& creds,
                                          const std::vector<const Descriptor*>& layers,
                                          Tracker* tracker) {
  // A few worker threads take layers in order; the first failure stops further starts.
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  absl::Status first_error;
  auto work = [&] {
    for (;;) {
      {
        absl::MutexLock lock(&mu);
        if (!first_error.ok()) return;
      }
      size_t i = next.fetch_add(1);
      if (i >= layers.size()) return;
      absl::Status st = fetchBlob(ref, creds, layers[i]->digest, layers[i]->size, tracker);
      if (!st.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) first_error = annotate(st, absl::StrCat("layer ", layers[i]->digest));
      }
    }
  };
  size_t n = std::min<size_t>(layers.size(), static_cast<size_t>(options_.max_concurrent_downloads));
  std::vector<std::thread> workers;
  for (size_t i = 1; i < n; ++i) workers.emplace_back(work);
  work();
  for (auto& t : workers) t.join();
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
  store::ImageRecord record;
  std::vector<std::string> refs;
  {
    absl::ReaderMutexLock gc(&gc_mu_);
    BERTH_ASSIGN_OR_RETURN(Manifest top, registry_.fetchManifest(ref, creds));
    BERTH_ASSIGN_OR_RETURN(Digest top_digest, Digest::parse(top.digest));
    BERTH_RETURN_IF_ERROR(content_.put(top_digest, top.body));
    Manifest chosen = top;
    if (isIndex(top.media_type, top.body)) {
      BERTH_ASSIGN_OR_RETURN(auto entries, parseIndex(top.body));
      auto entry = choosePlatform(entries, options_.os, options_.architecture);
      if (!entry.ok()) return annotate(entry.status(), absl::StrCat("image \"", ref.str(), "\""));
      BERTH_ASSIGN_OR_RETURN(chosen, registry_.fetchManifestByDigest(ref, entry->digest, creds));
      BERTH_ASSIGN_OR_RETURN(Digest d, Digest::parse(chosen.digest));
      BERTH_RETURN_IF_ERROR(content_.put(d, chosen.body));
    }
    auto manifest = parseManifest(chosen.body);
    if (!manifest.ok()) return annotate(manifest.status(), absl::StrCat("image \"", ref.str(), "\""));

    BERTH_RETURN_IF_ERROR(
        fetchBlob(ref, creds, manifest->config.digest, manifest->config.size, &tracker));
    BERTH_ASSIGN_OR_RETURN(Digest config_digest, Digest::parse(manifest->config.digest));
    BERTH_ASSIGN_OR_RETURN(std::string config_body, content_.readAll(config_digest, kMaxJsonBlob));
    auto config = parseImageConfig(config_body);
    if (!config.ok()) return annotate(config.status(), absl::StrCat("image \"", ref.str(), "\""));
    if (config->diff_ids.size() != manifest->layers.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image \"", ref.str(), "\": manifest has ", manifest->layers.size(),
          " layers but its config lists ", config->diff_ids.size()));
    }
    std::vector<std::string> chain = chainIds(config->diff_ids);

    // Only layers whose snapshot is missing are downloaded; present chains cost nothing.
    std::vector<const Descriptor*> missing;
    size_t first_missing = chain.size();
    for (size_t i = chain.size(); i-- > 0;) {
      if (snapshots_.has(chain[i])) break;
      first_missing = i;
    }
    for (size_t i = first_missing; i < chain.size(); ++i) missing.push_back(&manifest->layers[i]);
    BERTH_RETURN_IF_ERROR(downloadLayers(ref, creds, missing, &tracker));
    for (size_t i = first_missing; i < chain.size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(Digest layer, Digest::parse(manifest->layers[i].digest));
      absl::Status st =
          snapshots_.applyLayer(chain[i], i == 0 ? "" : chain[i - 1], content_.blobPath(layer));
      if (!st.ok()) {
        return annotate(st, absl::StrCat("image \"", ref.str(), "\": layer ", layer.str()));
      }
    }

    record.id = config_digest.str();
    record.manifest_digest = chosen.digest;
    record.media_type = chosen.media_type;
    record.size = static_cast<uint64_t>(std::max<int64_t>(manifest->config.size, 0));
    for (const auto& l : manifest->layers) {
      record.size += static_cast<uint64_t>(std::max<int64_t>(l.size, 0));
      record.layers.push_back(l.digest);
    }
    record.config_json = config_body;
    record.chain_id = chain.empty() ? "" : chain.back();
    record.created_at_ns = nowNs();
    if (auto existing = store_.getImage(record.id); existing.ok()) {
      record.created_at_ns = (*existing)->created_at_ns;
    }
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
    for (const auto& old : previous) {
      if (store_.imageRefs(old).empty()) {
        log()->info("image {} lost its last reference to {}; removing it", old, ref.str());
        BERTH_RETURN_IF_ERROR(store_.deleteImage(old));
      }
    }
  }
  log()->info("pulled {} as {} in {}", ref.str(), record.id,
              absl::FormatDuration(absl::Now() - start));
  if (auto gc = garbageCollect(); !gc.ok()) log()->warn("garbage collection: {}", gc.message());
  refreshUsage();
  return store_.getImage(record.id);
}

absl::StatusOr<store::ImagePtr> ImageManager::resolve(absl::string_view text) const {
  if (text.empty()) return absl::InvalidArgumentError("image reference must not be empty");
  absl::string_view hex = text;
  if (absl::StartsWith(hex, "sha256:")) hex.remove_prefix(7);
  if (isHex64(hex)) {
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

bool ImageManager::pinned(const store::ImageRecord& image) const {
  if (image.pinned) return true;
  if (pinned_ref_.empty()) return false;
  auto refs = store_.imageRefs(image.id);
  return std::find(refs.begin(), refs.end(), pinned_ref_) != refs.end();
}

absl::Status ImageManager::remove(absl::string_view ref_or_id) {
  auto image = resolve(ref_or_id);
  if (absl::IsNotFound(image.status())) return absl::OkStatus();
  if (!image.ok()) return image.status();
  BERTH_RETURN_IF_ERROR(store_.deleteImage((*image)->id));
  log()->info("removed image {} ({})", (*image)->id, ref_or_id);
  BERTH_RETURN_IF_ERROR(garbageCollect());
  refreshUsage();
  return absl::OkStatus();
}

absl::Status ImageManager::garbageCollect() {
  absl::WriterMutexLock gc(&gc_mu_);
  std::set<std::string> keep_blobs;
  std::set<std::string> keep_snapshots;
  for (const auto& image : store_.listImages()) {
    keep_blobs.insert(image->id);
    keep_blobs.insert(image->manifest_digest);
    keep_blobs.insert(image->layers.begin(), image->layers.end());
    for (const auto& r : store_.imageRefs(image->id)) {
      if (auto at = r.find('@'); at != std::string::npos) keep_blobs.insert(r.substr(at + 1));
    }
    if (auto config = parseImageConfig(image->config_json); config.ok()) {
      for (const auto& c : chainIds(config->diff_ids)) keep_snapshots.insert(c);
    } else {
      keep_snapshots.insert(image->chain_id);
    }
  }
  for (const auto& d : content_.list()) {
    if (keep_blobs.contains(d.str())) continue;
    BERTH_RETURN_IF_ERROR(content_.remove(d));
  }
  // Committed snapshots no image needs, children before parents; one still used (by a
  // container's writable snapshot, or as another chain's parent) is refused and kept.
  for (bool progress = true; progress;) {
    progress = false;
    for (const auto& s : store_.listSnapshots()) {
      if (s->kind != store::SnapshotKind::kCommitted || keep_snapshots.contains(s->key)) continue;
      absl::Status st = snapshots_.remove(s->key);
      if (st.ok()) {
        progress = true;
      } else if (!absl::IsFailedPrecondition(st)) {
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
  // Measured without any lock held, then published.
  auto snap = snapshots_.totalUsage();
  auto blobs = content_.usage();
  FsUsage u;
  u.mountpoint = snapshots_.root();
  u.bytes = snap.bytes + blobs.bytes;
  u.inodes = snap.inodes + blobs.inodes;
  u.timestamp_ns = nowNs();
  absl::MutexLock lock(&usage_mu_);
  usage_ = u;
}

}  // namespace berth::image
