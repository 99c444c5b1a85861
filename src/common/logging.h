// One logger per component, all writing to stderr in text or JSON lines. Every message is
// escaped and capped on its way out (sanitizeMessage), so a client's string can neither forge
// a log line nor flood the log, whichever call site logs it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

// Debian's Abseil has its own string_view type (not std::string_view); let fmt print it, so that
// `log->info("{}", status.message())` works.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace berth::logging {

enum class Format { kText, kJson };

// Configures every logger (existing and future). Level is one of trace, debug, info, warn,
// error; anything else is InvalidArgument.
[[nodiscard]] absl::Status init(absl::string_view level, Format format);

// The logger for `component` (e.g. "cri", "store"); created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Messages longer than this (after escaping) are cut, with the number of bytes left out.
inline constexpr size_t kMaxMessageBytes = 4096;

// `message` as it appears in a log line: control characters (C0, DEL, C1, U+2028/U+2029)
// become escapes such as \n or \x1b, bytes that are not UTF-8 become \xNN, and output beyond
// `cap` bytes is replaced by "… (N more bytes)", N counting the bytes of `message` not shown.
std::string sanitizeMessage(std::string_view message, size_t cap = kMaxMessageBytes);

}  // namespace berth::logging
