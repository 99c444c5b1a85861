// CRI log lines back into whole lines: parsing, joining P fragments, tail, rotation.
#include "cli/cri_log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace berth::cli {
namespace {

bool digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return false;
  for (size_t i = pos; i < pos + n; ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) == 0) return false;
  }
  return true;
}

// `2016-10-06T00:17:09[.669794202](Z|+01:00)`: the shape only, not the calendar.
bool isRfc3339(std::string_view s) {
  if (!digits(s, 0, 4) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' ||
      !digits(s, 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2) || s[13] != ':' ||
      !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2)) {
    return false;
  }
  size_t pos = 19;
  if (s[pos] == '.') {
    size_t start = ++pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) != 0) ++pos;
    if (pos == start) return false;
  }
  std::string_view zone = s.substr(pos);
  if (zone == "Z" || zone == "z") return true;
  return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && digits(zone, 1, 2) &&
         zone[3] == ':' && digits(zone, 4, 2);
}

}  // namespace

std::optional<CriLogLine> parseCriLogLine(std::string_view line) {
  CriLogLine out;
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || !isRfc3339(line.substr(0, sp))) return std::nullopt;
  out.timestamp = line.substr(0, sp);
  line.remove_prefix(sp + 1);

  sp = line.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  std::string_view stream = line.substr(0, sp);
  if (stream == "stdout") {
    out.stream = LogStream::kStdout;
  } else if (stream == "stderr") {
    out.stream = LogStream::kStderr;
  } else {
    return std::nullopt;
  }
  line.remove_prefix(sp + 1);

  // The tag ends at a space, which is there even before empty content.
  sp = line.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  std::string_view tag = line.substr(0, sp);
  tag = tag.substr(0, tag.find(':'));
  if (tag == "P") {
    out.partial = true;
  } else if (tag != "F") {
    return std::nullopt;
  }
  out.content = line.substr(sp + 1);
  return out;
}

void CriLogReader::line(std::string_view text) {
  auto parsed = parseCriLogLine(text);
  if (!parsed) {
    ++malformed_;
    return;
  }
  std::string& pending = pending_[static_cast<int>(parsed->stream)];
  if (parsed->partial) {
    pending.append(parsed->content);
    return;
  }
  LogMessage m{.stream = parsed->stream};
  if (pending.empty()) {
    m.text.assign(parsed->content);
  } else {
    m.text = std::move(pending);
    m.text.append(parsed->content);
    pending.clear();
  }
  sink_(std::move(m));
}

void CriLogReader::feed(std::string_view data) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      rest_.append(data);
      return;
    }
    if (rest_.empty()) {
      line(data.substr(0, nl));
    } else {
      rest_.append(data.substr(0, nl));
      line(rest_);
      rest_.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

void CriLogReader::endFile() {
  if (rest_.empty()) return;
  line(rest_);
  rest_.clear();
}

void CriLogReader::finish() {
  endFile();
  for (LogStream s : {LogStream::kStdout, LogStream::kStderr}) {
    std::string& pending = pending_[static_cast<int>(s)];
    if (pending.empty()) continue;
    sink_(LogMessage{.stream = s, .text = std::move(pending), .newline = false});
    pending.clear();
  }
}

void LogTail::add(LogMessage&& m) {
  if (n_ == 0) return;
  messages_.push_back(std::move(m));
  if (n_ > 0 && messages_.size() > static_cast<size_t>(n_)) messages_.pop_front();
}

absl::Status CriLogFile::open() {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open log file ", path_));
  UniqueFd owned(fd);
  struct stat st{};
  if (::fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("stat ", path_));
  fd_ = std::move(owned);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  offset_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<size_t> CriLogFile::drain() {
  size_t total = 0;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("read ", path_));
    if (n == 0) return total;
    reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
    offset_ += n;
    total += static_cast<size_t>(n);
  }
}

absl::StatusOr<size_t> CriLogFile::poll() {
  if (!fd_.valid()) return absl::FailedPreconditionError("log file not open");
  auto n = drain();
  if (!n.ok()) return n;
  size_t total = *n;
  struct stat st{};
  // A missing path is the moment between the rename and the writer's reopen: keep reading the
  // old file meanwhile.
  if (::stat(path_.c_str(), &st) == 0 && (st.st_dev != dev_ || st.st_ino != ino_)) {
    n = drain();  // what reached the old file after the first read
    if (!n.ok()) return n;
    total += *n;
    reader_.endFile();
    if (absl::Status opened = open(); !opened.ok()) return opened;
  } else if (::fstat(fd_.get(), &st) == 0 && st.st_size < offset_) {
    if (::lseek(fd_.get(), 0, SEEK_SET) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("seek ", path_));
    }
    offset_ = 0;
    reader_.endFile();
  } else {
    return total;
  }
  n = drain();
  if (!n.ok()) return n;
  return total + *n;
}

}  // namespace berth::cli
