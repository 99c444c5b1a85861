// CriLogWriter: line splitting, partial-line tagging and the RFC3339Nano timestamps of CRI logs.
#include "shim/cri_log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "shim/shim_log.h"

namespace berth::shim {
namespace {

constexpr size_t kMaxKeptBuffer = 64u << 10;

const char* streamName(LogStream s) { return s == LogStream::kStdout ? "stdout" : "stderr"; }

}  // namespace

size_t formatCriTimestamp(int64_t ns, char* buf) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  auto frac = static_cast<long>(ns % 1000000000);
  if (frac < 0) {  // before 1970: keep the fraction positive
    frac += 1000000000;
    --secs;
  }
  tm t{};
  ::gmtime_r(&secs, &t);
  int n = std::snprintf(buf, 31, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", t.tm_year + 1900,
                        t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, frac);
  return n < 0 ? 0 : static_cast<size_t>(n);
}

Outcome CriLogWriter::open(const std::string& path, size_t max_line) {
  path_ = path;
  max_line_ = max_line == 0 ? kDefaultMaxLogLine : max_line;
  return reopen();
}

Outcome CriLogWriter::reopen() {
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  if (fd < 0) return Outcome::fromErrno(errno, "open container log " + path_);
  fd_.reset(fd);
  warned_ = false;
  return Outcome::success();
}

void CriLogWriter::appendLine(LogStream stream, std::string_view content, bool partial,
                              const char* ts) {
  out_.append(ts);
  out_.push_back(' ');
  out_.append(streamName(stream));
  out_.append(partial ? " P " : " F ");
  out_.append(content);
  out_.push_back('\n');
}

void CriLogWriter::write(LogStream stream, std::string_view data, int64_t now_ns) {
  char ts[32];
  formatCriTimestamp(now_ns, ts);
  std::string& pending = pending_[static_cast<int>(stream)];
  size_t pos = 0;
  while (pos < data.size()) {
    const void* nl = std::memchr(data.data() + pos, '\n', data.size() - pos);
    if (nl == nullptr) {
      // No end of line yet: buffer it, writing whole chunks of an overlong line as partials.
      pending.append(data.substr(pos));
      size_t off = 0;
      while (pending.size() - off > max_line_) {
        appendLine(stream, std::string_view(pending).substr(off, max_line_), true, ts);
        off += max_line_;
      }
      pending.erase(0, off);
      break;
    }
    size_t end = static_cast<size_t>(static_cast<const char*>(nl) - data.data());
    std::string_view line = data.substr(pos, end - pos);
    if (!pending.empty()) {
      pending.append(line);
      line = pending;
    }
    // A CR LF line end (a terminal's) is a line end, as for containerd's reader.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (line.size() > max_line_) {
      appendLine(stream, line.substr(0, max_line_), true, ts);
      line.remove_prefix(max_line_);
    }
    appendLine(stream, line, false, ts);
    pending.clear();
    pos = end + 1;
  }
  flush();
}

void CriLogWriter::finish(LogStream stream, int64_t now_ns) {
  std::string& pending = pending_[static_cast<int>(stream)];
  if (!pending.empty()) {
    char ts[32];
    formatCriTimestamp(now_ns, ts);
    appendLine(stream, pending, true, ts);
    flush();
  }
  std::string().swap(pending);
}

void CriLogWriter::flush() {
  size_t off = 0;
  while (fd_.valid() && off < out_.size()) {
    ssize_t n = ::write(fd_.get(), out_.data() + off, out_.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // A full disk must not stop the container: drop the lines, say so once.
    if (!warned_) {
      SHIM_LOG_WARN("cannot write container log %s: %s; dropping lines", path_.c_str(),
                    std::strerror(n < 0 ? errno : EIO));
      warned_ = true;
    }
    break;
  }
  out_.clear();
  if (out_.capacity() > kMaxKeptBuffer) std::string().swap(out_);
}

}  // namespace berth::shim
