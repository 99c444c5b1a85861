// CheckpointContainer: CRIU's images through `runc checkpoint --leave-running`, the container's
// config and spec, and its writable layer's changes, in the tar kubelet asked for.
#include "container/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/random_id.h"
#include "common/spawn.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "container/container_manager.h"
#include "nlohmann/json.hpp"

namespace berth::container {
namespace {

constexpr int kCriuCheckTimeoutMs = 10000;
constexpr absl::Duration kDefaultTimeout = absl::Minutes(10);
constexpr absl::Duration kPauseTimeout = absl::Seconds(10);
constexpr char kCheckpointPrefix[] = "checkpoint-";

// An uncompressed tar being written.
class TarWriter {
 public:
  explicit TarWriter(const std::string& path) : path_(path), a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    opened_ = archive_write_open_filename(a_, path.c_str()) == ARCHIVE_OK;
  }
  ~TarWriter() { archive_write_free(a_); }
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  absl::Status opened() const {
    if (opened_) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("create ", path_, ": ", archive_error_string(a_)));
  }

  // Adds `file` (lstat'ed as `st`) as `name`.
  absl::Status add(const std::string& file, const std::string& name, const struct stat& st) {
    archive_entry* e = archive_entry_new();
    absl::Cleanup free_entry = [e] { archive_entry_free(e); };
    archive_entry_copy_stat(e, &st);
    archive_entry_set_pathname(e, name.c_str());
    UniqueFd fd;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      std::string target = std::filesystem::read_symlink(file, ec).string();
      if (ec) return absl::InternalError(absl::StrCat("read link ", file, ": ", ec.message()));
      archive_entry_set_symlink(e, target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      fd.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open ", file));
    } else if (!S_ISDIR(st.st_mode)) {
      archive_entry_set_size(e, 0);
    }
    if (archive_write_header(a_, e) != ARCHIVE_OK) return failed(name);
    if (fd.valid()) {
      char buf[1 << 16];
      for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) return lastErrnoStatus(absl::StrCat("read ", file));
        if (n == 0) break;
        if (archive_write_data(a_, buf, static_cast<size_t>(n)) < 0) return failed(name);
      }
    }
    return absl::OkStatus();
  }

  // Adds an empty regular file `name` (an opaque-directory marker).
  absl::Status addEmpty(const std::string& name, const struct stat& dir) {
    struct stat st = dir;
    st.st_mode = S_IFREG | 0644;
    st.st_size = 0;
    archive_entry* e = archive_entry_new();
    absl::Cleanup free_entry = [e] { archive_entry_free(e); };
    archive_entry_copy_stat(e, &st);
    archive_entry_set_pathname(e, name.c_str());
    return archive_write_header(a_, e) == ARCHIVE_OK ? absl::OkStatus() : failed(name);
  }

  absl::Status close() {
    if (archive_write_close(a_) != ARCHIVE_OK) return failed("the end");
    return absl::OkStatus();
  }

 private:
  absl::Status failed(const std::string& what) {
    return absl::InternalError(
        absl::StrCat("write ", what, " into ", path_, ": ", archive_error_string(a_)));
  }

  std::string path_;
  archive* a_;
  bool opened_ = false;
};

// Calls `fn(path, relative name, stat)` for everything below `root`, parents first, each
// directory's entries sorted by name.
absl::Status walk(const std::string& root, const std::string& rel,
                  const std::function<absl::Status(const std::string&, const std::string&,
                                                   const struct stat&)>& fn) {
  std::vector<std::string> names;
  std::error_code ec;
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("list ", dir, ": ", ec.message()));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string r = rel.empty() ? name : rel + "/" + name;
    const std::string path = root + "/" + r;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return lastErrnoStatus(absl::StrCat("stat ", path));
    BERTH_RETURN_IF_ERROR(fn(path, r, st));
    if (S_ISDIR(st.st_mode)) BERTH_RETURN_IF_ERROR(walk(root, r, fn));
  }
  return absl::OkStatus();
}

bool opaque(const std::string& dir) {
  char v[2] = {};
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    if (::lgetxattr(dir.c_str(), name, v, sizeof v) == 1 && v[0] == 'y') return true;
  }
  return false;
}

// The first line of `text` that says "Error" (CRIU's cause comes first), else its last line.
std::string errorLine(const std::string& text) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    if (line.find("Error") != absl::string_view::npos) return std::string(line);
    last = std::string(line);
  }
  return last;
}

}  // namespace

std::string criuProblem(const std::string& criu) {
  auto found = findExecutable(criu);
  if (!found.ok()) {
    return absl::StrCat("CRIU is not installed (", criu,
                        " not found): checkpointing needs it (Debian package criu)");
  }
  RunResult r = runBounded({*found, "check"}, kCriuCheckTimeoutMs);
  if (r.ok()) return "";
  if (r.timed_out) return absl::StrCat(*found, " check did not finish in time");
  RunResult v = runBounded({*found, "--version"}, kCriuCheckTimeoutMs);
  std::string version = errorLine(v.output);
  return absl::StrCat("CRIU cannot checkpoint on this host (", *found, " check failed",
                      version.empty() ? "" : ", " + version, "): ", errorLine(r.output));
}

absl::StatusOr<std::vector<std::string>> writeRootfsDiff(const std::string& upper,
                                                         const std::string& tar_path) {
  TarWriter tar(tar_path);
  BERTH_RETURN_IF_ERROR(tar.opened());
  std::vector<std::string> deleted;
  BERTH_RETURN_IF_ERROR(walk(
      upper, "",
      [&](const std::string& path, const std::string& rel, const struct stat& st) -> absl::Status {
        // overlayfs's whiteout: a character device 0:0 where a lower file was deleted.
        if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
          deleted.push_back("/" + rel);
          return absl::OkStatus();
        }
        BERTH_RETURN_IF_ERROR(tar.add(path, rel, st));
        if (S_ISDIR(st.st_mode) && opaque(path)) return tar.addEmpty(rel + "/.wh..wh..opq", st);
        return absl::OkStatus();
      }));
  BERTH_RETURN_IF_ERROR(tar.close());
  std::sort(deleted.begin(), deleted.end());
  return deleted;
}

absl::Status writeTarOf(const std::string& dir, const std::string& tar_path) {
  TarWriter tar(tar_path);
  BERTH_RETURN_IF_ERROR(tar.opened());
  BERTH_RETURN_IF_ERROR(
      walk(dir, "", [&](const std::string& path, const std::string& rel, const struct stat& st) {
        return tar.add(path, rel, st);
      }));
  return tar.close();
}

absl::Status ContainerManager::checkpoint(const std::string& id, const std::string& location,
                                          absl::Duration timeout) {
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  if (rec->state != store::ContainerState::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint container ", id,
                                                      ": it is not running (state ",
                                                      store::toString(rec->state), ")"));
  }
  const std::string parent = location.substr(0, location.rfind('/'));
  struct stat st {};
  if (location.empty() || location[0] != '/' || location.back() == '/' ||
      absl::StrContains(location, "/../") || absl::EndsWith(location, "/..") ||
      absl::StrContains(location, "/./")) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint container ", id, ": location \"",
                                                   location, "\" must be an absolute file path"));
  }
  if (::stat(parent.empty() ? "/" : parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint container ", id, ": location \"",
                                                   location, "\": its folder does not exist"));
  }
  if (std::string why = criuProblem(options_.criu); !why.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint container ", id, ": ", why));
  }
  const std::string criu = findExecutable(options_.criu).value_or(options_.criu);
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(rec->sandbox_id));
  // Everything is gathered in a work folder below the container's (removed with it), beside
  // the intents that recovery finishes after a crash: "paused" while the container is frozen,
  // "archive.tmp" naming the archive being written next to `location`.
  const std::string work = absl::StrCat(options_.containers_dir, "/", id, "/", kCheckpointPrefix,
                                        newObjectId().substr(0, 12));
  const std::string content = work + "/archive";
  BERTH_RETURN_IF_ERROR(makeDirs(content + "/checkpoint", 0700));
  absl::Cleanup remove_work = [work] { (void)removeAll(work); };
  auto runtime = [&task, &id](const std::vector<std::string>& args, absl::Duration bound) {
    std::vector<std::string> argv = {task.runtime_path, "--root", task.runtime_root};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(id);
    return runBounded(argv, static_cast<int>(absl::ToInt64Milliseconds(bound)));
  };

  const absl::Time now = absl::Now();
  nlohmann::json config = {
      {"id", id},
      {"name", rec->metadata.name},
      {"rootfsImage", rec->image_ref},
      {"rootfsImageRef", rec->image_id},
      {"rootfsImageName", rec->image_ref},
      {"runtime", task.runtime_type.empty() ? task.runtime_path : task.runtime_type},
      {"createdTime", absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(rec->created_at_ns),
                                       absl::UTCTimeZone())},
      {"checkpointedTime", absl::FormatTime(absl::RFC3339_full, now, absl::UTCTimeZone())}};
  BERTH_RETURN_IF_ERROR(writeFileAtomic(content + "/config.dump", config.dump(), 0600));
  BERTH_RETURN_IF_ERROR(writeFileAtomic(content + "/spec.dump", rec->spec_json, 0600));

  // The writable layer's changes, taken while the processes are frozen so that they agree.
  BERTH_ASSIGN_OR_RETURN(std::string upper, snapshots_.fsDir(rec->snapshot_key));
  BERTH_RETURN_IF_ERROR(writeFileAtomic(work + "/paused", "", 0600));
  RunResult paused = runtime({"pause"}, kPauseTimeout);
  if (!paused.ok()) {
    return absl::InternalError(
        absl::StrCat("checkpoint container ", id, ": pause it: ", errorLine(paused.output)));
  }
  crashPoint("container.checkpoint.after_pause");
  auto deleted = writeRootfsDiff(upper, content + "/rootfs-diff.tar");
  RunResult resumed = runtime({"resume"}, kPauseTimeout);
  if (!resumed.ok()) {
    std::move(remove_work).Cancel();  // recovery resumes it from the intent
    return absl::InternalError(
        absl::StrCat("checkpoint container ", id, ": resume it: ", errorLine(resumed.output)));
  }
  ::unlink((work + "/paused").c_str());
  BERTH_RETURN_IF_ERROR(deleted.status());
  BERTH_RETURN_IF_ERROR(
      writeFileAtomic(content + "/deleted.files", nlohmann::json(*deleted).dump(), 0600));

  const absl::Duration bound = timeout > absl::ZeroDuration() ? timeout : kDefaultTimeout;
  RunResult dump = runtime({"--criu", criu, "checkpoint", "--image-path", content + "/checkpoint",
                            "--work-path", content, "--leave-running", "--file-locks"},
                           bound);
  if (!dump.ok()) {
    if (dump.timed_out) {
      return absl::DeadlineExceededError(absl::StrCat(
          "checkpoint container ", id, ": not done within ", absl::FormatDuration(bound)));
    }
    std::string log = readFile(content + "/dump.log").value_or("");
    return absl::InternalError(absl::StrCat("checkpoint container ", id, ": ",
                                            errorLine(dump.output),
                                            log.empty() ? "" : "; CRIU: " + errorLine(log)));
  }

  const std::string tmp = absl::StrCat(location, ".tmp-", newObjectId().substr(0, 8));
  BERTH_RETURN_IF_ERROR(writeFileAtomic(work + "/archive.tmp", tmp, 0600));
  absl::Status written = writeTarOf(content, tmp);
  if (written.ok()) crashPoint("container.checkpoint.after_archive");
  if (written.ok() && ::rename(tmp.c_str(), location.c_str()) != 0) {
    written = lastErrnoStatus(absl::StrCat("rename ", tmp, " to ", location));
  }
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return annotate(written, absl::StrCat("checkpoint container ", id));
  }
  return absl::OkStatus();
}

void ContainerManager::finishCutOffCheckpoints(const store::ContainerRecord& rec) {
  std::error_code ec;
  const std::string dir = options_.containers_dir + "/" + rec.id;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(kCheckpointPrefix, 0) != 0) continue;
    const std::string work = e.path().string();
    logging::get("container")
        ->warn("container {}: a checkpoint was cut off by a crash; undoing it", rec.id);
    if (auto tmp = readFile(work + "/archive.tmp"); tmp.ok() && !tmp->empty()) {
      ::unlink(tmp->c_str());
    }
    if (::access((work + "/paused").c_str(), F_OK) == 0) {
      auto task = taskContext(rec.sandbox_id);
      RunResult r;
      if (task.ok()) {
        r = runBounded({task->runtime_path, "--root", task->runtime_root, "resume", rec.id},
                       static_cast<int>(absl::ToInt64Milliseconds(kPauseTimeout)));
      }
      // A container that is not paused (any more), or gone, is fine too.
      if (!task.ok() || (!r.ok() && r.output.find("not paused") == std::string::npos &&
                         r.output.find("does not exist") == std::string::npos)) {
        logging::get("container")
            ->error("container {}: resume it after a cut-off checkpoint: {}", rec.id,
                    task.ok() ? errorLine(r.output) : std::string(task.status().message()));
        continue;  // the intent stays: the next start tries again
      }
    }
    if (absl::Status st = removeAll(work); !st.ok())
      logging::get("container")->error("{}", st.message());
  }
}

}  // namespace berth::container
