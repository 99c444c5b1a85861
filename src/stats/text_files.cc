// Small readers for cgroup and proc files.
#include "stats/text_files.h"

#include <charconv>

#include "common/fs.h"

namespace berth::stats {

std::string_view trimSpace(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string_view> splitNonEmpty(std::string_view text, std::string_view separators) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of(separators, pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::optional<std::string> readTextFile(const std::string& path) {
  absl::StatusOr<std::string> text = readFile(path);
  if (!text.ok()) return std::nullopt;
  return std::move(text).value();
}

std::optional<uint64_t> parseUint(std::string_view text) {
  text = trimSpace(text);
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<uint64_t> keyedValue(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.size() > key.size() && line.substr(0, key.size()) == key &&
        (line[key.size()] == ' ' || line[key.size()] == '\t')) {
      return parseUint(line.substr(key.size()));
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> readUintFile(const std::string& path) {
  std::optional<std::string> text = readTextFile(path);
  if (!text) return std::nullopt;
  return parseUint(*text);
}

std::optional<uint64_t> FileSource::readUint(const std::string& path) {
  std::optional<std::string> text = read(path);
  if (!text) return std::nullopt;
  return parseUint(*text);
}

namespace {

class PlainFiles final : public FileSource {
 public:
  std::optional<std::string> read(const std::string& path) override { return readTextFile(path); }
};

}  // namespace

FileSource& plainFiles() {
  static PlainFiles files;
  return files;
}

}  // namespace berth::stats
