// The content-addressed blob store: temp files in ingest/, verification while streaming,
// fsync + rename into blobs/, and de-duplication of concurrent ingests of one digest.
#include "image/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::image {
namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kBlobMode = 0644;

std::shared_ptr<spdlog::logger> logger() {
  static const auto log = logging::get("content");
  return log;
}

// Writes all of data, retrying short writes and EINTR.
absl::Status fullWrite(int fd, const char* data, size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoStatus(absl::StrCat("write ", path));
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Makes a rename or unlink in `dir` durable.
absl::Status fsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open directory ", dir));
  if (::fsync(fd.get()) != 0) return lastErrnoStatus(absl::StrCat("sync directory ", dir));
  return absl::OkStatus();
}

// A temp file that is unlinked when the object dies unless it was published.
class TempFile {
 public:
  [[nodiscard]] static absl::StatusOr<TempFile> create(const std::string& dir,
                                                       absl::string_view prefix) {
    std::string path = absl::StrCat(dir, "/", prefix, "-XXXXXX");
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return lastErrnoStatus(absl::StrCat("create temp file in ", dir));
    return TempFile(std::move(path), UniqueFd(fd));
  }

  TempFile(TempFile&& o) noexcept : path_(std::exchange(o.path_, {})), fd_(std::move(o.fd_)) {}
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    fd_.reset();
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // Syncs the data and renames the file to `dest`; afterwards this object owns nothing.
  [[nodiscard]] absl::Status publish(const std::string& dest) {
    if (::fchmod(fd_.get(), kBlobMode) != 0) return lastErrnoStatus(absl::StrCat("chmod ", path_));
    if (::fsync(fd_.get()) != 0) return lastErrnoStatus(absl::StrCat("sync ", path_));
    if (::close(fd_.release()) != 0) return lastErrnoStatus(absl::StrCat("close ", path_));
    if (::rename(path_.c_str(), dest.c_str()) != 0) {
      return lastErrnoStatus(absl::StrCat("rename ", path_, " to ", dest));
    }
    path_.clear();
    return absl::OkStatus();
  }

 private:
  TempFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// Calls fn(name, stat) for each regular file directly in `dir`; missing dir means no files.
template <typename Fn>
void forEachFile(const std::string& dir, Fn&& fn) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno != ENOENT) logger()->warn("cannot list {}: {}", dir, std::strerror(errno));
    return;
  }
  while (struct dirent* e = ::readdir(d)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced
    if (!S_ISREG(st.st_mode)) continue;
    fn(name, st);
  }
  ::closedir(d);
}

}  // namespace

// One ingest in progress. `result` is written once by the leader before `done` is notified
// and read by waiters only after it is.
struct ContentStore::InFlight {
  absl::Notification done;
  absl::Status result;
  size_t waiters = 0;  // guarded by ContentStore::mu_
};

// Finishes a flight on every path out of the leader's work, so that waiters are always woken
// (even if `fill` throws).
class ContentStore::FlightGuard {
 public:
  FlightGuard(ContentStore* store, std::string hex, std::shared_ptr<InFlight> flight)
      : store_(store), hex_(std::move(hex)), flight_(std::move(flight)) {}
  ~FlightGuard() {
    if (flight_ != nullptr) {
      finish(absl::AbortedError(absl::StrCat("ingest of blob sha256:", hex_, " was abandoned")));
    }
  }
  FlightGuard(const FlightGuard&) = delete;
  FlightGuard& operator=(const FlightGuard&) = delete;

  void finish(absl::Status result) {
    store_->finishFlight(hex_, flight_, std::move(result));
    flight_.reset();
  }

 private:
  ContentStore* store_;
  std::string hex_;
  std::shared_ptr<InFlight> flight_;
};

ContentStore::ContentStore(std::string root) : root_(std::move(root)) {}

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::open(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("content store root is empty");
  std::unique_ptr<ContentStore> store(new ContentStore(root));
  for (const std::string& dir : {root, store->blobDir(), store->ingestDir()}) {
    BERTH_RETURN_IF_ERROR(annotate(makeDirs(dir, kDirMode), "open content store"));
  }
  BERTH_RETURN_IF_ERROR(store->removeStaleIngests());
  return store;
}

std::string ContentStore::blobDir() const { return absl::StrCat(root_, "/blobs/sha256"); }
std::string ContentStore::ingestDir() const { return absl::StrCat(root_, "/ingest"); }
std::string ContentStore::blobPath(const Digest& d) const {
  return absl::StrCat(root_, "/blobs/sha256/", d.hex());
}

absl::Status ContentStore::removeStaleIngests() const {
  const std::string dir = ingestDir();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return lastErrnoStatus(absl::StrCat("list ", dir));
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    absl::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  for (const std::string& name : names) {
    // Anything here is an ingest interrupted by a crash; a directory can only be debris too.
    BERTH_RETURN_IF_ERROR(
        annotate(removeAll(absl::StrCat(dir, "/", name)), "remove stale ingest file"));
  }
  if (!names.empty()) logger()->info("removed {} stale ingest file(s) from {}", names.size(), dir);
  return absl::OkStatus();
}

bool ContentStore::has(const Digest& d) const {
  struct stat st {};
  return ::stat(blobPath(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<uint64_t> ContentStore::size(const Digest& d) const {
  struct stat st {};
  if (::stat(blobPath(d).c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("blob ", d.str(), " not found"));
    return lastErrnoStatus(absl::StrCat("stat blob ", d.str()));
  }
  return static_cast<uint64_t>(st.st_size);
}

absl::StatusOr<std::string> ContentStore::readAll(const Digest& d, uint64_t max_bytes) const {
  const std::string path = blobPath(d);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("blob ", d.str(), " not found"));
    return lastErrnoStatus(absl::StrCat("open blob ", d.str()));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return lastErrnoStatus(absl::StrCat("stat blob ", d.str()));
  auto too_big = [&](uint64_t n) {
    return absl::ResourceExhaustedError(
        absl::StrCat("blob ", d.str(), " is ", n, " bytes, more than the limit of ", max_bytes));
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_big(st.st_size);
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  // Read until EOF; a blob is never rewritten in place, so the size should not change.
  for (;;) {
    if (got == out.size()) {
      if (out.size() >= max_bytes) {
        char probe;
        ssize_t n = ::read(fd.get(), &probe, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return lastErrnoStatus(absl::StrCat("read blob ", d.str()));
        if (n == 0) break;
        return too_big(got + 1);
      }
      out.resize(std::min<uint64_t>(max_bytes, out.size() + 65536));
    }
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoStatus(absl::StrCat("read blob ", d.str()));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  Digest actual = sha256Of(out);
  if (actual != d) {
    return absl::DataLossError(
        absl::StrCat("blob ", d.str(), " is corrupt on disk: content is ", actual.str()));
  }
  return out;
}

namespace {
std::string flightKey(const Digest& d, absl::string_view source) {
  return source.empty() ? d.hex() : absl::StrCat(d.hex(), "|", source);
}
}  // namespace

absl::Status ContentStore::ingest(const Digest& expected, int64_t expected_size, const Fill& fill,
                                  absl::string_view source) {
  const std::string key = flightKey(expected, source);
  for (;;) {
    if (has(expected)) return absl::OkStatus();
    std::shared_ptr<InFlight> flight;
    bool leader = false;
    {
      absl::MutexLock lock(&mu_);
      std::shared_ptr<InFlight>& slot = inflight_[key];
      if (slot == nullptr) {
        slot = std::make_shared<InFlight>();
        leader = true;
      } else {
        ++slot->waiters;
      }
      flight = slot;
    }
    if (leader) {
      FlightGuard guard(this, key, flight);
      // A previous leader may have published the blob between our stat and our claim.
      absl::Status st =
          has(expected) ? absl::OkStatus() : ingestOnce(expected, expected_size, fill);
      guard.finish(st);
      return st;
    }
    flight->done.WaitForNotification();
    if (flight->result.ok()) return absl::OkStatus();
    // The leader failed (perhaps its own pull was cancelled). Its entry is gone: loop, and the
    // first waiter to claim the digest again becomes the new leader with its own fill.
  }
}

void ContentStore::finishFlight(const std::string& hex, const std::shared_ptr<InFlight>& flight,
                                absl::Status result) {
  {
    absl::MutexLock lock(&mu_);
    auto it = inflight_.find(hex);
    if (it != inflight_.end() && it->second == flight) inflight_.erase(it);
  }
  // Erased before notifying, so a woken waiter that retries never finds this finished flight.
  flight->result = std::move(result);
  flight->done.Notify();
}

absl::Status ContentStore::ingestOnce(const Digest& expected, int64_t expected_size,
                                      const Fill& fill) {
  const std::string name = expected.str();
  BERTH_ASSIGN_OR_RETURN(
      TempFile tmp, TempFile::create(ingestDir(), absl::string_view(expected.hex()).substr(0, 12)));
  Sha256 hash;
  uint64_t written = 0;
  WritebackPacer pacer;      // the disk writes while the blob streams in, not all at the fsync
  absl::Status write_error;  // sticky: once a write fails, the ingest fails
  const Writer write = [&](const char* data, size_t len) -> absl::Status {
    if (!write_error.ok()) return write_error;
    if (expected_size >= 0 && written + len > static_cast<uint64_t>(expected_size)) {
      write_error = absl::DataLossError(
          absl::StrCat("blob ", name, " size mismatch: got more than ", expected_size, " bytes"));
      return write_error;
    }
    hash.update(data, len);
    write_error = fullWrite(tmp.fd(), data, len, tmp.path());
    if (!write_error.ok()) return write_error;
    written += len;
    pacer.wrote(tmp.fd(), len);
    return write_error;
  };

  absl::Status st = fill(write);
  if (!st.ok()) return st;
  if (!write_error.ok()) return write_error;
  if (expected_size >= 0 && written != static_cast<uint64_t>(expected_size)) {
    return absl::DataLossError(absl::StrCat("blob ", name, " size mismatch: got ", written,
                                            " bytes, want ", expected_size));
  }
  Digest actual = hash.finish();
  if (actual != expected) {
    return absl::DataLossError(absl::StrCat("blob ", name, " digest mismatch: got ", actual.str()));
  }
  BERTH_RETURN_IF_ERROR(
      annotate(tmp.publish(blobPath(expected)), absl::StrCat("store blob ", name)));
  BERTH_RETURN_IF_ERROR(annotate(fsyncDir(blobDir()), absl::StrCat("store blob ", name)));
  logger()->debug("stored blob {} ({} bytes)", name, written);
  return absl::OkStatus();
}

absl::Status ContentStore::put(const Digest& expected, absl::string_view data) {
  return ingest(expected, static_cast<int64_t>(data.size()),
                [data](const Writer& write) { return write(data.data(), data.size()); });
}

absl::Status ContentStore::remove(const Digest& d) {
  if (::unlink(blobPath(d).c_str()) != 0 && errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("remove blob ", d.str()));
  }
  // No directory fsync: a blob that reappears after a crash is only garbage for the next GC.
  return absl::OkStatus();
}

std::vector<Digest> ContentStore::list() const {
  std::vector<Digest> out;
  forEachFile(blobDir(), [&](absl::string_view name, const struct stat&) {
    absl::StatusOr<Digest> d = Digest::parse(absl::StrCat("sha256:", name));
    if (d.ok()) out.push_back(*std::move(d));
  });
  std::sort(out.begin(), out.end());
  return out;
}

ContentStore::Usage ContentStore::usage() const {
  Usage u;
  forEachFile(blobDir(), [&](absl::string_view, const struct stat& st) {
    u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    ++u.inodes;
  });
  return u;
}

size_t ContentStore::waitersForTest(const Digest& d, absl::string_view source) const {
  absl::MutexLock lock(&mu_);
  auto it = inflight_.find(flightKey(d, source));
  return it == inflight_.end() ? 0 : it->second->waiters;
}

}  // namespace berth::image
