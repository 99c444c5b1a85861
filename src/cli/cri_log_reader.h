// Reading CRI container log files (`<RFC3339Nano> <stdout|stderr> <P|F> <content>` lines, as
// berth-shim writes them) back into whole lines, for `berthctl logs`.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::cli {

enum class LogStream { kStdout = 0, kStderr = 1 };

// One line of a log file, pointing into the text it was parsed from.
struct CriLogLine {
  std::string_view timestamp;
  LogStream stream = LogStream::kStdout;
  bool partial = false;  // tag P: the line goes on in the stream's next line
  std::string_view content;
};

// Parses one line without its '\n'; nullopt when it does not have the CRI shape. The tag may
// carry extra ':'-separated fields after P or F (kubelet allows them).
std::optional<CriLogLine> parseCriLogLine(std::string_view line);

// A line as the container wrote it: the P fragments of one stream joined with its F line.
struct LogMessage {
  LogStream stream = LogStream::kStdout;
  std::string text;     // without the line end
  bool newline = true;  // false for trailing fragments whose F line never came
};

// Turns the bytes of one or more log files, fed as they are read, into LogMessages. Fragments
// are joined per stream, so interleaved stdout and stderr lines do not mix.
class CriLogReader {
 public:
  using Sink = std::function<void(LogMessage&&)>;

  explicit CriLogReader(Sink sink) : sink_(std::move(sink)) {}

  // Parses the complete lines in `data` (after any unterminated line left by the last call).
  void feed(std::string_view data);
  // A file ended (it was rotated away): an unterminated last line is taken as it is;
  // fragments still waiting for their F line carry over to the next file.
  void endFile();
  // The input ended: endFile(), then fragments without an F line go out without a newline.
  void finish();

  size_t malformed() const { return malformed_; }

 private:
  void line(std::string_view text);

  Sink sink_;
  std::string rest_;        // bytes after the last '\n'
  std::string pending_[2];  // joined P fragments, per stream
  size_t malformed_ = 0;
};

// Keeps the last `n` messages; all of them when n < 0.
class LogTail {
 public:
  explicit LogTail(int64_t n) : n_(n) {}
  void add(LogMessage&& m);
  std::deque<LogMessage>& messages() { return messages_; }

 private:
  int64_t n_;
  std::deque<LogMessage> messages_;
};

// Reads one log path as it grows. When the path comes to name another file (a rotation
// renamed the old one away) the old file is read to its end first; when the file shrinks
// (truncated in place) reading starts again at its beginning.
class CriLogFile {
 public:
  CriLogFile(std::string path, CriLogReader& reader) : path_(std::move(path)), reader_(reader) {}

  absl::Status open();
  // Feeds what was added since the last call; returns the number of bytes read.
  absl::StatusOr<size_t> poll();

 private:
  absl::StatusOr<size_t> drain();

  std::string path_;
  CriLogReader& reader_;
  UniqueFd fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t offset_ = 0;
};

}  // namespace berth::cli
