// JSON read from outside berth (registries, CNI plugins, files, stored records) is checked
// before it is parsed: a size limit, and a nesting limit so that nothing built from it (a
// copy, a dump, a comparison, all recursive in nlohmann::json) can exhaust a thread's stack.
// Stored JSON text (extra data, specs, configs) is read back leniently: a record written by an
// older berth, or an empty field, must not fail a status call.
#pragma once

#include <cstddef>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth {

// Deeper nesting than this is refused everywhere. Real documents (image configs, OCI specs,
// CNI results, seccomp profiles) nest fewer than 10 levels.
inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text`, found by a linear scan that skips
// strings; it stops counting once `stop_at` is reached. Not a validator: invalid JSON gets
// some number and fails to parse later.
int jsonNestingDepth(absl::string_view text, int stop_at = kMaxJsonDepth + 1);

// Parses JSON that came from outside. InvalidArgument, starting with `what`, when the text is
// longer than `max_bytes`, nests deeper than `max_depth`, or is not JSON.
[[nodiscard]] absl::StatusOr<nlohmann::json> parseUntrustedJson(absl::string_view text,
                                                                absl::string_view what,
                                                                size_t max_bytes,
                                                                int max_depth = kMaxJsonDepth);

// The JSON value in `text`, or `fallback` when `text` is empty, not JSON, or nested deeper
// than kMaxJsonDepth.
nlohmann::json parseJsonOr(const std::string& text, nlohmann::json fallback);

// `text` with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD, as Go's
// encoding/json coerces strings (so containerd hands such bytes to the runtime): JSON text
// must be UTF-8, and CRI env values are bytes that may not be.
std::string coerceToUtf8(absl::string_view text);

// The JSON object in `text`; an empty object when it is empty, not JSON or not an object.
inline nlohmann::json parseJsonObject(const std::string& text) {
  nlohmann::json j = parseJsonOr(text, nlohmann::json::object());
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace berth
