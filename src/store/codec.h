// Encodes and decodes the JSON `data` column: every record field that is not a real column.
// Decoding ignores unknown keys and leaves missing ones at their defaults, so fields can be
// added or dropped without a schema migration.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/types.h"

namespace berth::store {

// InvalidArgument if a string field is not valid UTF-8 (JSON cannot hold it).
[[nodiscard]] absl::StatusOr<std::string> encodeData(const SandboxRecord& record);
[[nodiscard]] absl::StatusOr<std::string> encodeData(const ContainerRecord& record);
[[nodiscard]] absl::StatusOr<std::string> encodeData(const ImageRecord& record);
[[nodiscard]] absl::StatusOr<std::string> encodeData(const SnapshotRecord& record);

// Fills the data-column fields of `record`; DataLoss if `data` is not a JSON object or a
// field has the wrong type.
[[nodiscard]] absl::Status decodeData(absl::string_view data, SandboxRecord& record);
[[nodiscard]] absl::Status decodeData(absl::string_view data, ContainerRecord& record);
[[nodiscard]] absl::Status decodeData(absl::string_view data, ImageRecord& record);
[[nodiscard]] absl::Status decodeData(absl::string_view data, SnapshotRecord& record);

}  // namespace berth::store
