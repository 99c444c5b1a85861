// Error helpers: one status type (absl::Status) everywhere, with context and errno mapping.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth {

// Maps an errno value to a status code class, keeping the context: ENOENT → NotFound,
// EEXIST → AlreadyExists, EACCES/EPERM → PermissionDenied, EINVAL → InvalidArgument,
// EBUSY/EAGAIN → Unavailable, anything else → Internal. Inside berth the class drives
// decisions (a missing file, a busy mount). The status carries the errno (kErrnoPayload): at
// the service edge it reaches a client as Internal, with the errno named, unless aboutObject()
// said it describes the object the client named. EBUSY from an unmount is not "runtime down".
[[nodiscard]] absl::Status errnoStatus(int err, absl::string_view context);

// The payload that marks a status made from an errno; its value is the errno in decimal.
inline constexpr char kErrnoPayload[] = "type.berth.dev/errno";
// The errno `status` was made from, or 0.
int errnoOf(const absl::Status& status);
// `status`, marked as describing the object the client named (a path it gave, say): its code
// stands at the service edge.
[[nodiscard]] absl::Status aboutObject(absl::Status status);

// errnoStatus(errno, context), for use right after a failed libc call.
[[nodiscard]] inline absl::Status lastErrnoStatus(absl::string_view context) {
  return errnoStatus(errno, context);
}

// Returns `status` with `context: ` prefixed to its message; the code and payloads are kept.
[[nodiscard]] absl::Status annotate(const absl::Status& status, absl::string_view context);

}  // namespace berth

#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define BERTH_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::absl::Status berth_status_ = (expr);           \
    if (!berth_status_.ok()) return berth_status_;   \
  } while (0)

// `BERTH_ASSIGN_OR_RETURN(auto x, f());` declares x from a StatusOr or returns its error.
#define BERTH_ASSIGN_OR_RETURN(lhs, expr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_CONCAT_(berth_statusor_, __LINE__), lhs, expr)
#define BERTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
