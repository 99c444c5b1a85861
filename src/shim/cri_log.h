// CRI-format container log writer for berth-shim: turns a container's stdout/stderr bytes into
// kubelet's log lines `<RFC3339Nano UTC> <stdout|stderr> <F|P> <content>\n` in one file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "shim/protocol.h"

namespace berth::shim {

inline constexpr size_t kDefaultMaxLogLine = 16384;

enum class LogStream { kStdout = 0, kStderr = 1 };

// Formats `ns` since the epoch as `2016-10-06T00:17:09.669794202Z` (always nine fraction digits,
// so that the lines of a file sort by time). `buf` must hold 31 bytes; returns the length (30).
size_t formatCriTimestamp(int64_t ns, char* buf);

// Called from berth-shim's single thread only.
//
// Lines longer than max_line are split into chunks of max_line bytes tagged `P` (partial), the
// last chunk tagged `F`. A stream that ends without a final newline has its remainder written
// tagged `P`, as containerd's CRI logger does (kubelet then shows it without a newline).
class CriLogWriter {
 public:
  // Opens (O_APPEND|O_CREAT, 0640) `path`; its directory must exist.
  [[nodiscard]] Outcome open(const std::string& path, size_t max_line);
  // Reopens the file at the same path (after kubelet's rotation renamed it). On failure the old
  // file stays in use.
  [[nodiscard]] Outcome reopen();
  // Writes the complete lines in `data` (plus any buffered start of a line), buffering the rest.
  void write(LogStream stream, std::string_view data, int64_t now_ns);
  // The stream has ended: writes its buffered partial line, if any, tagged `P`.
  void finish(LogStream stream, int64_t now_ns);
  void close() { fd_.reset(); }

  bool isOpen() const { return fd_.valid(); }
  const std::string& path() const { return path_; }

 private:
  void appendLine(LogStream stream, std::string_view content, bool partial, const char* ts);
  void flush();

  std::string path_;
  UniqueFd fd_;
  size_t max_line_ = kDefaultMaxLogLine;
  std::string pending_[2];  // start of a line not yet ended, per stream (< max_line bytes)
  std::string out_;         // formatted lines of one write() call
  bool warned_ = false;
};

}  // namespace berth::shim
