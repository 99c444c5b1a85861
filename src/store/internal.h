// Helpers shared by the store_*.cc files: status messages that name the object, id prefix
// lookup over a sorted index, and the component logger.
#pragma once

#include <iterator>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"
#include "store/state.h"

namespace berth::store {

inline absl::Status notFoundError(absl::string_view noun, absl::string_view id) {
  return absl::NotFoundError(absl::StrCat(noun, " \"", id, "\" not found"));
}

inline absl::Status alreadyExistsError(absl::string_view noun, absl::string_view id) {
  return absl::AlreadyExistsError(absl::StrCat(noun, " \"", id, "\" already exists"));
}

inline absl::Status transitionError(absl::string_view noun, absl::string_view id,
                                    absl::string_view from, absl::string_view to) {
  return absl::FailedPreconditionError(
      absl::StrCat(noun, " \"", id, "\" cannot go from ", from, " to ", to));
}

// A second operation where one is under way (store/state.h: Pending).
inline absl::Status pendingError(absl::string_view noun, absl::string_view id, Pending from,
                                 Pending to) {
  return absl::FailedPreconditionError(
      absl::StrCat(noun, " \"", id, "\" is ", toString(from), " (not ", toString(to), ")"));
}

// The full key of `map` (sorted by key) for an exact key or a unique key prefix. An exact
// match wins even when it is also a prefix of other keys.
template <typename SortedMap>
absl::StatusOr<std::string> resolvePrefix(const SortedMap& map, absl::string_view prefix,
                                          absl::string_view noun) {
  if (prefix.empty()) return absl::InvalidArgumentError(absl::StrCat(noun, " id is empty"));
  auto it = map.lower_bound(prefix);  // an exact match sorts first among the candidates
  if (it == map.end() || !absl::StartsWith(it->first, prefix)) {
    return notFoundError(noun, prefix);
  }
  if (it->first.size() == prefix.size()) return it->first;
  auto next = std::next(it);
  if (next != map.end() && absl::StartsWith(next->first, prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat(noun, " \"", prefix, "\" is ambiguous: more than one id starts with it"));
  }
  return it->first;
}

inline const std::shared_ptr<spdlog::logger>& storeLog() {
  static const std::shared_ptr<spdlog::logger> log = logging::get("store");
  return log;
}

}  // namespace berth::store
