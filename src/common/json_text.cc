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

nlohmann::json parseJsonOr(const std::string& text, nlohmann::json fallback) {
  if (text.empty() || jsonNestingDepth(text) > kMaxJsonDepth) return fallback;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

}  // namespace berth
