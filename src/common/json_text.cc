// Limits on JSON from outside: a lexical depth scan before any parse.
#include "common/json_text.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace berth {

int jsonNestingDepth(absl::string_view text, int stop_at) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        deepest = std::max(deepest, ++depth);
        if (deepest >= stop_at) return deepest;
        break;
      case ']':
      case '}':
        depth = std::max(depth - 1, 0);
        break;
      default:
        break;
    }
  }
  return deepest;
}

absl::StatusOr<nlohmann::json> parseUntrustedJson(absl::string_view text, absl::string_view what,
                                                  size_t max_bytes, int max_depth) {
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", text.size(), " bytes of JSON, more than the limit of ",
                     max_bytes));
  }
  if (jsonNestingDepth(text, max_depth + 1) > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " nests JSON arrays and objects deeper than ", max_depth, " levels"));
  }
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not JSON"));
  return j;
}

std::string coerceToUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && p[i] >= lo && p[i] <= hi;
  };
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t len = 0;  // of a valid sequence at i; 0: invalid
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = cont(i + 1) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF) {
      // No overlong forms (E0 needs A0..BF) and no surrogates (ED needs 80..9F).
      unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      len = cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      // No overlong forms (F0 needs 90..BF) and nothing above U+10FFFF (F4 needs 80..8F).
      unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      len = cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    }
    if (len == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for this one byte, as Go's utf8.DecodeRune
      ++i;
    } else {
      out.append(text.data() + i, len);
      i += len;
    }
  }
  return out;
}

nlohmann::json parseJsonOr(const std::string& text, nlohmann::json fallback) {
  if (text.empty() || jsonNestingDepth(text) > kMaxJsonDepth) return fallback;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

}  // namespace berth
