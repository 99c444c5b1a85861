// OverlaySnapshotter: directory allocation, layer application with single-flight, overlay
// mount options, removal, disk usage and crash clean-up.
#include "image/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "image/unpack.h"

namespace berth::image {
namespace {

using store::SnapshotKind;
using store::SnapshotPtr;
using store::SnapshotRecord;

constexpr absl::string_view kTmpSuffix = ".tmp";
// Longer parent chains than this mean a corrupt store (a cycle), not a real image.
constexpr int kMaxChain = 1000;

const std::shared_ptr<spdlog::logger>& log() {
  static const std::shared_ptr<spdlog::logger> logger = logging::get("snapshot");
  return logger;
}

std::string quoted(absl::string_view key) { return absl::StrCat("\"", key, "\""); }

// The id in a directory name "<n>" or "<n>.tmp"; nullopt for anything else.
std::optional<uint64_t> parseDirName(absl::string_view name) {
  absl::ConsumeSuffix(&name, kTmpSuffix);
  uint64_t id = 0;
  if (name.empty() || !std::all_of(name.begin(), name.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(name, &id)) {
    return std::nullopt;
  }
  return id;
}

// The names in directory `path` (without "." and ".."). A missing directory is empty.
absl::StatusOr<std::vector<std::string>> listDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return names;
    return lastErrnoStatus(absl::StrCat("list ", path));
  }
  while (struct dirent* d = ::readdir(dir)) {
    std::string name = d->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

// Adds the disk usage of `name` in `dir_fd` (and below) to `usage`, counting hard-linked inodes
// once. Entries that vanish during the walk (a running container) are skipped.
void addUsage(int dir_fd, const char* name, OverlaySnapshotter::Usage& usage,
              absl::flat_hash_set<std::pair<dev_t, ino_t>>& seen) {
  struct stat st {};
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (st.st_nlink <= 1 || S_ISDIR(st.st_mode) || seen.insert({st.st_dev, st.st_ino}).second) {
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    usage.inodes += 1;
  }
  if (!S_ISDIR(st.st_mode)) return;
  int fd = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return;
  }
  while (struct dirent* d = ::readdir(dir)) {
    if (std::string_view(d->d_name) == "." || std::string_view(d->d_name) == "..") continue;
    addUsage(::dirfd(dir), d->d_name, usage, seen);
  }
  ::closedir(dir);
}

OverlaySnapshotter::Usage diskUsage(const std::string& path) {
  OverlaySnapshotter::Usage usage;
  absl::flat_hash_set<std::pair<dev_t, ino_t>> seen;
  addUsage(AT_FDCWD, path.c_str(), usage, seen);
  return usage;
}

int64_t nowNs() { return absl::ToUnixNanos(absl::Now()); }

// `value`, or its error prefixed with `context`.
template <typename T>
absl::StatusOr<T> withContext(absl::StatusOr<T> value, absl::string_view context) {
  if (!value.ok()) return annotate(value.status(), context);
  return value;
}

}  // namespace

OverlaySnapshotter::OverlaySnapshotter(std::string root, store::Store* store, uint64_t next_id)
    : root_(std::move(root)), store_(store), next_id_(next_id) {}

absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> OverlaySnapshotter::open(
    const std::string& root, store::Store* store) {
  BERTH_RETURN_IF_ERROR(annotate(makeDirs(root, 0700), "open snapshotter"));
  // Ids are never reused: start above every directory and every record.
  uint64_t max_id = 0;
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, listDir(root));
  for (const std::string& name : names) {
    if (std::optional<uint64_t> id = parseDirName(name)) max_id = std::max(max_id, *id);
  }
  for (const SnapshotPtr& record : store->listSnapshots()) {
    auto it = record->labels.find(kDirLabel);
    uint64_t id = 0;
    if (it != record->labels.end() && absl::SimpleAtoi(it->second, &id))
      max_id = std::max(max_id, id);
  }
  return std::unique_ptr<OverlaySnapshotter>(new OverlaySnapshotter(root, store, max_id + 1));
}

std::string OverlaySnapshotter::allocate() {
  absl::MutexLock lock(&mu_);
  std::string id = absl::StrCat(next_id_++);
  busy_.insert(id);
  return id;
}

void OverlaySnapshotter::release(const std::string& id) {
  absl::MutexLock lock(&mu_);
  busy_.erase(id);
}

bool OverlaySnapshotter::has(const std::string& key) const { return store_->getSnapshot(key).ok(); }

bool OverlaySnapshotter::hasVerifiedLayer(const std::string& key) const {
  absl::StatusOr<SnapshotPtr> record = store_->getSnapshot(key);
  return record.ok() && (*record)->kind == SnapshotKind::kCommitted && !(*record)->diff_id.empty();
}

absl::StatusOr<std::string> OverlaySnapshotter::dirOf(const SnapshotRecord& record) const {
  auto it = record.labels.find(kDirLabel);
  if (it == record.labels.end() || !parseDirName(it->second) ||
      absl::EndsWith(it->second, kTmpSuffix)) {
    return absl::InternalError(
        absl::StrCat("snapshot ", quoted(record.key), " has no directory id"));
  }
  return absl::StrCat(root_, "/", it->second);
}

absl::StatusOr<std::vector<std::string>> OverlaySnapshotter::chainDirs(
    const std::string& key) const {
  std::vector<std::string> dirs;
  std::string next = key;
  while (!next.empty()) {
    if (dirs.size() >= kMaxChain) {
      return absl::InternalError(
          absl::StrCat("snapshot ", quoted(key), " has over ", kMaxChain, " parents"));
    }
    absl::StatusOr<SnapshotPtr> record = store_->getSnapshot(next);
    if (!record.ok()) {
      return next == key
                 ? record.status()
                 : absl::FailedPreconditionError(absl::StrCat(
                       "parent ", quoted(next), " of snapshot ", quoted(key), " is missing"));
    }
    BERTH_ASSIGN_OR_RETURN(std::string dir, dirOf(**record));
    dirs.push_back(dir + "/fs");
    next = (*record)->parent;
  }
  return dirs;
}

// --- Layers ---

absl::Status OverlaySnapshotter::applyLayer(const std::string& key, const std::string& parent_key,
                                            const std::string& layer_path,
                                            const UnpackOptions& unpack,
                                            const store::Labels& labels) {
  FileLayerSource source(layer_path);
  return applyLayer(key, parent_key, source, layer_path, unpack, labels);
}

absl::Status OverlaySnapshotter::applyLayer(const std::string& key, const std::string& parent_key,
                                            LayerSource& source, const std::string& name,
                                            const UnpackOptions& unpack,
                                            const store::Labels& labels,
                                            const ParentReady& parent_ready) {
  if (unpack.expected_diff_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("apply layer ", quoted(key), ": no diff id to check its content against"));
  }
  std::shared_ptr<Flight> flight;
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      // The source is never read: whoever feeds it must not wait for this call (the leader
      // may be waiting for the blob that this source's download is storing).
      source.unused();
      std::shared_ptr<Flight> leader = it->second;
      mu_.Await(absl::Condition(&leader->done));
      return leader->status;
    }
    // Checked under mu_ so that a leader finishing just now is seen.
    if (absl::StatusOr<SnapshotPtr> existing = store_->getSnapshot(key); existing.ok()) {
      source.unused();
      if ((*existing)->kind != SnapshotKind::kCommitted) {
        return absl::FailedPreconditionError(
            absl::StrCat("snapshot ", quoted(key), " exists and is not a committed layer"));
      }
      if ((*existing)->diff_id != unpack.expected_diff_id) {
        return absl::FailedPreconditionError(
            absl::StrCat("snapshot ", quoted(key), " holds a layer with diff id \"",
                         (*existing)->diff_id, "\", not ", unpack.expected_diff_id));
      }
      return absl::OkStatus();
    }
    flight = std::make_shared<Flight>();
    flights_[key] = flight;
  }
  absl::Status status =
      createCommitted(key, parent_key, source, name, unpack, labels, parent_ready);
  absl::MutexLock lock(&mu_);
  flight->status = status;
  flight->done = true;
  flights_.erase(key);
  return status;
}

absl::Status OverlaySnapshotter::createCommitted(const std::string& key,
                                                 const std::string& parent_key, LayerSource& source,
                                                 const std::string& name,
                                                 const UnpackOptions& unpack,
                                                 const store::Labels& labels,
                                                 const ParentReady& parent_ready) {
  const std::string context = absl::StrCat("apply layer ", quoted(key));
  const std::string id = allocate();
  const std::string dir = absl::StrCat(root_, "/", id);
  const std::string tmp = absl::StrCat(dir, kTmpSuffix);
  auto fail = [&](const absl::Status& st) {
    absl::Status rm = removeAll(tmp);
    if (rm.ok()) rm = removeAll(dir);
    if (!rm.ok()) log()->error("snapshot {}: clean up after failure: {}", key, rm.message());
    release(id);
    return annotate(st, context);
  };
  if (::mkdir(tmp.c_str(), 0700) != 0 || ::mkdir((tmp + "/fs").c_str(), 0755) != 0) {
    return fail(lastErrnoStatus(absl::StrCat("create ", tmp)));
  }
  absl::StatusOr<UnpackStats> stats = unpackLayer(source, name, tmp + "/fs", unpack);
  if (!stats.ok()) return fail(stats.status());
  if (parent_ready) {
    if (absl::Status ready = parent_ready(); !ready.ok()) return fail(ready);
  }
  if (!parent_key.empty()) {
    absl::StatusOr<SnapshotPtr> parent = store_->getSnapshot(parent_key);
    if (!parent.ok()) return fail(parent.status());
    if ((*parent)->kind != SnapshotKind::kCommitted || (*parent)->diff_id.empty()) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat("parent ", quoted(parent_key), " is not a checked layer")));
    }
    absl::StatusOr<std::vector<std::string>> lowers = chainDirs(parent_key);
    if (!lowers.ok()) return fail(lowers.status());
    absl::Status adopted = adoptLowerAttributes(tmp + "/fs", stats->implicit_dirs, *lowers);
    if (!adopted.ok()) return fail(adopted);
  }
  const Usage usage = diskUsage(tmp + "/fs");
  // The layer's files must be on disk before the record that says the layer is complete.
  UniqueFd tmp_fd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!tmp_fd.valid() || ::syncfs(tmp_fd.get()) != 0) {
    return fail(lastErrnoStatus(absl::StrCat("sync ", tmp)));
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    return fail(lastErrnoStatus(absl::StrCat("rename ", tmp, " to ", dir)));
  }
  SnapshotRecord record{.key = key,
                        .parent = parent_key,
                        .kind = SnapshotKind::kCommitted,
                        .created_at_ns = nowNs(),
                        .size = usage.bytes,
                        .diff_id = stats->diff_id,
                        .labels = labels};
  record.labels[kDirLabel] = id;
  absl::Status created = store_->createSnapshot(record);
  if (!created.ok()) return fail(created);
  release(id);
  log()->info("snapshot {}: applied layer {} into {} ({} entries, {} bytes)", key, name, dir,
              stats->entries, stats->bytes);
  return absl::OkStatus();
}

// --- Active snapshots and mounts ---

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::prepare(const std::string& key,
                                                               const std::string& parent_key,
                                                               const store::Labels& labels) {
  const std::string context = absl::StrCat("prepare snapshot ", quoted(key));
  if (has(key))
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", quoted(key), " already exists"));
  if (!parent_key.empty()) {
    absl::StatusOr<SnapshotPtr> parent = store_->getSnapshot(parent_key);
    if (!parent.ok()) return annotate(parent.status(), context);
    if ((*parent)->kind != SnapshotKind::kCommitted || (*parent)->diff_id.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(context, ": parent ", quoted(parent_key), " is not a checked layer"));
    }
  }
  const std::string id = allocate();
  const std::string dir = absl::StrCat(root_, "/", id);
  SnapshotRecord record{.key = key,
                        .parent = parent_key,
                        .kind = SnapshotKind::kActive,
                        .created_at_ns = nowNs(),
                        .labels = labels};
  record.labels[kDirLabel] = id;
  absl::Status st;
  if (::mkdir(dir.c_str(), 0700) != 0 || ::mkdir((dir + "/fs").c_str(), 0755) != 0 ||
      ::mkdir((dir + "/work").c_str(), 0700) != 0) {
    st = lastErrnoStatus(absl::StrCat("create ", dir));
  }
  if (st.ok()) st = store_->createSnapshot(record);
  if (!st.ok()) {
    absl::Status rm = removeAll(dir);
    if (!rm.ok()) log()->error("snapshot {}: clean up after failure: {}", key, rm.message());
    release(id);
    return annotate(st, context);
  }
  release(id);
  return activeMounts(record);
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::activeMounts(
    const SnapshotRecord& record) const {
  BERTH_ASSIGN_OR_RETURN(std::string dir, dirOf(record));
  if (record.parent.empty()) return std::vector<Mount>{{"bind", dir + "/fs", {"rw", "rbind"}}};
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> lowers, chainDirs(record.parent));
  return std::vector<Mount>{
      {"overlay",
       "overlay",
       {"index=off", absl::StrCat("workdir=", dir, "/work"), absl::StrCat("upperdir=", dir, "/fs"),
        absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":"))}}};
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::mounts(const std::string& key) const {
  BERTH_ASSIGN_OR_RETURN(SnapshotPtr record, store_->getSnapshot(key));
  if (record->kind == SnapshotKind::kActive) return activeMounts(*record);
  return view(key);
}

absl::StatusOr<std::vector<Mount>> OverlaySnapshotter::view(const std::string& key) const {
  BERTH_ASSIGN_OR_RETURN(SnapshotPtr record, store_->getSnapshot(key));
  if (record->kind != SnapshotKind::kCommitted) {
    return absl::FailedPreconditionError(
        absl::StrCat("view of snapshot ", quoted(key), ": it is not committed"));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> lowers, chainDirs(key));
  // overlayfs needs two lower layers when there is no upper one.
  if (lowers.size() == 1) return std::vector<Mount>{{"bind", lowers[0], {"ro", "rbind"}}};
  return std::vector<Mount>{
      {"overlay", "overlay", {"index=off", absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":"))}}};
}

// --- Removal, usage and clean-up ---

absl::Status OverlaySnapshotter::remove(const std::string& key) {
  absl::StatusOr<SnapshotPtr> record = store_->getSnapshot(key);
  if (absl::IsNotFound(record.status())) return absl::OkStatus();
  if (!record.ok()) return record.status();
  const std::string context = absl::StrCat("remove snapshot ", quoted(key));
  BERTH_ASSIGN_OR_RETURN(std::string dir, withContext(dirOf(**record), context));
  const std::string id = dir.substr(root_.size() + 1);
  {
    absl::MutexLock lock(&mu_);
    busy_.insert(id);  // keep cleanup() off it while both of us remove it
  }
  absl::Status st = store_->deleteSnapshot(key);
  // Without its record the directory is garbage: if removing it fails, cleanup() retries.
  if (st.ok()) st = removeAll(dir);
  release(id);
  return annotate(st, context);
}

absl::StatusOr<std::string> OverlaySnapshotter::fsDir(const std::string& key) const {
  BERTH_ASSIGN_OR_RETURN(SnapshotPtr record, store_->getSnapshot(key));
  BERTH_ASSIGN_OR_RETURN(std::string dir, dirOf(*record));
  return dir + "/fs";
}

absl::StatusOr<OverlaySnapshotter::Usage> OverlaySnapshotter::usage(const std::string& key) const {
  BERTH_ASSIGN_OR_RETURN(std::string dir, fsDir(key));
  return diskUsage(dir);
}

OverlaySnapshotter::Usage OverlaySnapshotter::totalUsage() const { return diskUsage(root_); }

bool OverlaySnapshotter::isGarbage(const std::string& name,
                                   const absl::flat_hash_set<std::string>& ids) const {
  if (!parseDirName(name)) return false;  // not ours: leave it
  std::string id = name;
  if (absl::EndsWith(id, kTmpSuffix)) id.resize(id.size() - kTmpSuffix.size());
  return !busy_.contains(id) && !ids.contains(name);
}

absl::Status OverlaySnapshotter::cleanup() {
  // List the directories before the records: a directory is created (busy) before its record
  // and stays busy until the record exists, so each listed name is busy or recorded below
  // unless it is garbage.
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, listDir(root_));
  std::vector<std::string> garbage;
  std::vector<SnapshotPtr> records;
  {
    absl::MutexLock lock(&mu_);
    records = store_->listSnapshots();
    absl::flat_hash_set<std::string> ids;
    for (const SnapshotPtr& r : records) {
      if (auto it = r->labels.find(kDirLabel); it != r->labels.end()) ids.insert(it->second);
    }
    for (const std::string& name : names) {
      if (isGarbage(name, ids)) garbage.push_back(name);
    }
  }
  absl::Status result;
  for (const std::string& name : garbage) {
    log()->warn("snapshots: removing {}/{}, which no snapshot owns", root_, name);
    absl::Status st = removeAll(absl::StrCat(root_, "/", name));
    if (!st.ok()) result.Update(st);
  }
  // Records without a directory, and (transitively) their children.
  absl::flat_hash_map<std::string, SnapshotPtr> by_key;
  for (const SnapshotPtr& r : records) by_key[r->key] = r;
  auto broken = [&](const SnapshotPtr& r) {
    absl::StatusOr<std::string> dir = dirOf(*r);
    struct stat st {};
    return !dir.ok() || ::stat((*dir + "/fs").c_str(), &st) != 0;
  };
  auto depth = [&](const SnapshotPtr& r) {
    int d = 0;
    for (auto it = by_key.find(r->parent); it != by_key.end() && d < kMaxChain;
         it = by_key.find(it->second->parent)) {
      ++d;
    }
    return d;
  };
  std::vector<std::pair<int, SnapshotPtr>> doomed;
  for (const SnapshotPtr& r : records) {
    bool bad = false;
    int d = 0;
    for (SnapshotPtr cur = r; cur != nullptr && d <= kMaxChain; ++d) {
      if (broken(cur)) bad = true;
      auto it = by_key.find(cur->parent);
      cur = it == by_key.end() ? nullptr : it->second;
    }
    if (bad) doomed.emplace_back(depth(r), r);
  }
  // Children first: a parent cannot be deleted while it has any.
  std::sort(doomed.begin(), doomed.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [d, r] : doomed) {
    log()->warn("snapshots: removing snapshot {}, whose directory (or a parent's) is missing",
                r->key);
    absl::Status st = remove(r->key);
    if (!st.ok()) result.Update(st);
  }
  return result;
}

}  // namespace berth::image
