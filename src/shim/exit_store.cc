// ExitStore: one JSON file per unacknowledged container exit, made durable before it is
// reported.
#include "shim/exit_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "shim/shim_log.h"

namespace berth::shim {
namespace {

constexpr std::string_view kSuffix = ".json";

Outcome writeAllFd(int fd, std::string_view data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Outcome::fromErrno(errno, "write " + path);
    }
    off += static_cast<size_t>(n);
  }
  return Outcome::success();
}

Outcome readSmallFile(int dir_fd, const std::string& name, std::string* out) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Outcome::fromErrno(errno, "open " + name);
  char buf[4096];
  out->clear();
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Outcome::fromErrno(errno, "read " + name);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > 65536) return Outcome::error(Code::kInvalidArgument, name + " is too large");
  }
  return Outcome::success();
}

}  // namespace

std::string ExitStore::pathOf(const std::string& container_id) const {
  return dir_ + "/" + container_id + std::string(kSuffix);
}

Outcome ExitStore::open(const std::string& dir) {
  dir_ = dir;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Outcome::fromErrno(errno, "create exit record directory " + dir);
  }
  dir_fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd_.valid()) return Outcome::fromErrno(errno, "open exit record directory " + dir);

  int dup_fd = ::fcntl(dir_fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return Outcome::fromErrno(errno, "dup " + dir);
  DIR* d = ::fdopendir(dup_fd);
  if (d == nullptr) {
    ::close(dup_fd);
    return Outcome::fromErrno(errno, "read exit record directory " + dir);
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= kSuffix.size() ||
        name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
      if (name.find(".tmp") != std::string::npos) ::unlinkat(dir_fd_.get(), name.c_str(), 0);
      continue;
    }
    std::string text;
    Json j;
    ExitRecord rec;
    Outcome r = readSmallFile(dir_fd_.get(), name, &text);
    if (r.ok()) r = parseObject(text, &j);
    if (r.ok()) r = exitFromJson(j, &rec);
    if (r.ok() && name != rec.container_id + std::string(kSuffix)) {
      r = Outcome::error(Code::kInvalidArgument, "record names another container");
    }
    if (!r.ok()) {
      SHIM_LOG_WARN("skipping exit record %s/%s: %s", dir.c_str(), name.c_str(), r.message.c_str());
      continue;
    }
    records_[rec.container_id] = rec;
  }
  ::closedir(d);
  for (const auto& [id, rec] : records_) last_seq_ = std::max(last_seq_, rec.seq);
  // Records from before sequence numbers get theirs now, after the others.
  for (auto& [id, rec] : records_) {
    if (rec.seq == 0) rec.seq = ++last_seq_;
  }
  return Outcome::success();
}

Outcome ExitStore::put(ExitRecord& rec) {
  if (!validContainerId(rec.container_id)) {
    return Outcome::error(Code::kInvalidArgument,
                          "invalid container id \"" + rec.container_id + "\"");
  }
  rec.seq = ++last_seq_;
  records_[rec.container_id] = rec;
  std::string name = rec.container_id + std::string(kSuffix);
  std::string tmp = name + ".tmp";
  std::string path = pathOf(rec.container_id);
  std::string text = exitToJson(rec).dump();
  text.push_back('\n');
  UniqueFd fd(::openat(dir_fd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return Outcome::fromErrno(errno, "create " + path + ".tmp");
  Outcome w = writeAllFd(fd.get(), text, path + ".tmp");
  if (w.ok() && ::fsync(fd.get()) != 0) w = Outcome::fromErrno(errno, "fsync " + path + ".tmp");
  fd.reset();
  if (w.ok() && ::renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), name.c_str()) != 0) {
    w = Outcome::fromErrno(errno, "rename " + path + ".tmp");
  }
  if (!w.ok()) {
    ::unlinkat(dir_fd_.get(), tmp.c_str(), 0);
    return w;
  }
  if (::fsync(dir_fd_.get()) != 0) return Outcome::fromErrno(errno, "fsync " + dir_);
  return Outcome::success();
}

Outcome ExitStore::remove(const std::string& container_id, uint64_t seq) {
  auto it = records_.find(container_id);
  if (it == records_.end()) return Outcome::success();
  if (seq > 0 && it->second.seq != seq) return Outcome::success();  // a newer record
  records_.erase(it);
  if (!validContainerId(container_id)) return Outcome::success();
  std::string name = container_id + std::string(kSuffix);
  if (::unlinkat(dir_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return Outcome::fromErrno(errno, "remove " + pathOf(container_id));
  }
  if (::fsync(dir_fd_.get()) != 0) return Outcome::fromErrno(errno, "fsync " + dir_);
  return Outcome::success();
}

const ExitRecord* ExitStore::find(const std::string& container_id) const {
  auto it = records_.find(container_id);
  return it == records_.end() ? nullptr : &it->second;
}

}  // namespace berth::shim
