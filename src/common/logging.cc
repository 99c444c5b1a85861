// Logger set-up: a shared stderr sink, UTC timestamps, a JSON-lines formatter, and the one
// place where messages are made safe to print.
#include "common/logging.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace berth::logging {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (2 to 4 bytes, Unicode's table
// of well-formed sequences: no overlongs, surrogates or code points past U+10FFFF), with its
// code point; 0 when `s` does not start with one.
size_t utf8Sequence(std::string_view s, char32_t* cp) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(0);
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < len || byte(1) < lo || byte(1) > hi) return 0;
  char32_t c = b0 & (0xff >> (len + 1));
  for (size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    c = (c << 6) | (byte(i) & 0x3f);
  }
  *cp = c;
  return len;
}

// True when `s` is printable ASCII within the cap: the common case, printed as it is.
bool alreadySafe(std::string_view s, size_t cap) {
  if (s.size() > cap) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// Wraps the text or JSON formatter: the message reaching it is sanitizeMessage()'s.
class SafeMessageFormatter final : public spdlog::formatter {
 public:
  explicit SafeMessageFormatter(std::unique_ptr<spdlog::formatter> inner)
      : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (alreadySafe(payload, kMaxMessageBytes)) return inner_->format(msg, dest);
    std::string safe = sanitizeMessage(payload);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(safe.data(), safe.size());
    inner_->format(copy, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<SafeMessageFormatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

// Formats a record as one JSON object per line: time, level, component, msg.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json j;
    auto t = absl::FromChrono(msg.time);
    j["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
    auto lvl = spdlog::level::to_string_view(msg.level);
    j["level"] = std::string(lvl.data(), lvl.size());
    j["component"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::mutex& mu() {
  static std::mutex m;
  return m;
}

std::unique_ptr<spdlog::formatter> makeFormatter(Format format) {
  std::unique_ptr<spdlog::formatter> inner;
  if (format == Format::kJson) {
    inner = std::make_unique<JsonFormatter>();
  } else {
    inner = std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%fZ %l [%n] %v",
                                                        spdlog::pattern_time_type::utc);
  }
  return std::make_unique<SafeMessageFormatter>(std::move(inner));
}

spdlog::sink_ptr& sink() {
  static spdlog::sink_ptr s = [] {
    auto p = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    p->set_formatter(makeFormatter(Format::kText));
    return p;
  }();
  return s;
}

spdlog::level::level_enum& currentLevel() {
  static spdlog::level::level_enum l = spdlog::level::info;
  return l;
}

}  // namespace

absl::Status init(absl::string_view level, Format format) {
  spdlog::level::level_enum lvl;
  if (level == "trace") {
    lvl = spdlog::level::trace;
  } else if (level == "debug") {
    lvl = spdlog::level::debug;
  } else if (level == "info") {
    lvl = spdlog::level::info;
  } else if (level == "warn") {
    lvl = spdlog::level::warn;
  } else if (level == "error") {
    lvl = spdlog::level::err;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log level \"", level, "\" is not one of trace, debug, info, warn, error"));
  }
  std::lock_guard<std::mutex> lock(mu());
  sink()->set_formatter(makeFormatter(format));
  currentLevel() = lvl;
  spdlog::apply_all([lvl](const std::shared_ptr<spdlog::logger>& l) { l->set_level(lvl); });
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::lock_guard<std::mutex> lock(mu());
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, sink());
  logger->set_level(currentLevel());
  logger->flush_on(spdlog::level::trace);
  spdlog::register_logger(logger);
  return logger;
}

std::string sanitizeMessage(std::string_view message, size_t cap) {
  std::string out;
  out.reserve(std::min(message.size(), cap) + 16);
  size_t i = 0;
  while (i < message.size()) {
    auto c = static_cast<unsigned char>(message[i]);
    char buf[16];
    std::string_view piece;
    size_t consumed = 1;
    if (c >= 0x20 && c < 0x7f) {
      piece = message.substr(i, 1);
    } else if (c == '\n') {
      piece = "\\n";
    } else if (c == '\r') {
      piece = "\\r";
    } else if (c == '\t') {
      piece = "\\t";
    } else if (c < 0x80) {  // other C0 controls and DEL
      piece = std::string_view(buf, std::snprintf(buf, sizeof buf, "\\x%02x", c));
    } else {
      char32_t cp = 0;
      size_t len = utf8Sequence(message.substr(i), &cp);
      if (len == 0) {
        piece = std::string_view(buf, std::snprintf(buf, sizeof buf, "\\x%02x", c));
      } else {
        consumed = len;
        // C1 controls (a terminal may act on them) and the line and paragraph separators.
        if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029) {
          piece = std::string_view(
              buf, std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp)));
        } else {
          piece = message.substr(i, len);
        }
      }
    }
    if (out.size() + piece.size() > cap) break;
    out.append(piece);
    i += consumed;
  }
  if (i < message.size()) absl::StrAppend(&out, "\u2026 (", message.size() - i, " more bytes)");
  return out;
}

}  // namespace berth::logging
