// Reading the small text files the kernel exposes: a single number, or "key value" lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::stats {

// The file's contents, or nullopt when it cannot be read (a missing file is the common case).
std::optional<std::string> readTextFile(const std::string& path);

// A decimal unsigned number with optional surrounding whitespace; nullopt for anything else.
std::optional<uint64_t> parseUint(std::string_view text);

// The number after `key` in "key value" lines (memory.stat, cpu.stat).
std::optional<uint64_t> keyedValue(std::string_view text, std::string_view key);

// The non-empty pieces of `text` between any of the characters in `separators`.
std::vector<std::string_view> splitNonEmpty(std::string_view text, std::string_view separators);

// `text` without leading and trailing blanks and newlines.
std::string_view trimSpace(std::string_view text);

// readTextFile followed by parseUint.
std::optional<uint64_t> readUintFile(const std::string& path);

// Where the readers get files from: plainFiles() opens each one afresh; the collector passes a
// source that keeps a target's cgroup files open between readings (open_files.h).
class FileSource {
 public:
  virtual ~FileSource() = default;
  // The file's contents, or nullopt when it cannot be read.
  virtual std::optional<std::string> read(const std::string& path) = 0;
  std::optional<uint64_t> readUint(const std::string& path);
};

// readTextFile as a FileSource; stateless, so shared by every thread.
FileSource& plainFiles();

}  // namespace berth::stats
