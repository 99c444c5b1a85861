// JSON kept as text in store records (extra data, specs, configs), read back leniently: a record
// written by an older berth, or an empty field, must not fail a status call.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace berth {

// The JSON value in `text`, or `fallback` when `text` is empty or not JSON.
inline nlohmann::json parseJsonOr(const std::string& text, nlohmann::json fallback) {
  if (text.empty()) return fallback;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

// The JSON object in `text`; an empty object when it is empty, not JSON or not an object.
inline nlohmann::json parseJsonObject(const std::string& text) {
  nlohmann::json j = parseJsonOr(text, nlohmann::json::object());
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace berth
