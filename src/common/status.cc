// errno → absl::Status mapping and context helpers.
#include "common/status.h"

#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace berth {

namespace {

absl::StatusCode classOf(int err) {
  switch (err) {
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
      return absl::StatusCode::kInvalidArgument;
    case EBUSY:
    case EAGAIN:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status errnoStatus(int err, absl::string_view context) {
  absl::Status st(classOf(err), absl::StrCat(context, ": ", std::strerror(err)));
  st.SetPayload(kErrnoPayload, absl::Cord(std::to_string(err)));
  return st;
}

int errnoOf(const absl::Status& status) {
  auto p = status.GetPayload(kErrnoPayload);
  if (!p.has_value()) return 0;
  int err = 0;
  return absl::SimpleAtoi(std::string(*p), &err) ? err : 0;
}

absl::Status aboutObject(absl::Status status) {
  status.ErasePayload(kErrnoPayload);
  return status;
}

absl::Status annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace berth
