// SQL for each table: row writes (inside the caller's transaction) and full-table reads for
// start-up. Indexed fields are real columns; the rest goes through the JSON data codec.
#pragma once

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "store/sqlite.h"
#include "store/types.h"

namespace berth::store {

[[nodiscard]] absl::Status insertSandboxRow(Database& db, const SandboxRecord& record);
[[nodiscard]] absl::Status updateSandboxRow(Database& db, const SandboxRecord& record);
[[nodiscard]] absl::Status deleteSandboxRow(Database& db, absl::string_view id);

[[nodiscard]] absl::Status insertContainerRow(Database& db, const ContainerRecord& record);
[[nodiscard]] absl::Status updateContainerRow(Database& db, const ContainerRecord& record);
[[nodiscard]] absl::Status deleteContainerRow(Database& db, absl::string_view id);

[[nodiscard]] absl::Status upsertImageRow(Database& db, const ImageRecord& record);
// Deletes the image and every ref to it.
[[nodiscard]] absl::Status deleteImageRow(Database& db, absl::string_view id);
[[nodiscard]] absl::Status upsertImageRefRow(Database& db, absl::string_view ref,
                                             absl::string_view image_id);
[[nodiscard]] absl::Status deleteImageRefRow(Database& db, absl::string_view ref);

[[nodiscard]] absl::Status insertSnapshotRow(Database& db, const SnapshotRecord& record);
[[nodiscard]] absl::Status updateSnapshotRow(Database& db, const SnapshotRecord& record);
[[nodiscard]] absl::Status deleteSnapshotRow(Database& db, absl::string_view key);

[[nodiscard]] absl::Status insertNameRow(Database& db, absl::string_view name,
                                         absl::string_view owner);
// Deletes the reservation only if `owner` holds it.
[[nodiscard]] absl::Status deleteNameRow(Database& db, absl::string_view name,
                                         absl::string_view owner);

// Full-table reads: `fn` is called once per row. DataLoss names the row that cannot be
// decoded.
[[nodiscard]] absl::Status readSandboxRows(Database& db,
                                           absl::FunctionRef<void(SandboxRecord&&)> fn);
[[nodiscard]] absl::Status readContainerRows(Database& db,
                                             absl::FunctionRef<void(ContainerRecord&&)> fn);
[[nodiscard]] absl::Status readImageRows(Database& db, absl::FunctionRef<void(ImageRecord&&)> fn);
// fn(reference, image id)
[[nodiscard]] absl::Status readImageRefRows(
    Database& db, absl::FunctionRef<void(std::string&&, std::string&&)> fn);
[[nodiscard]] absl::Status readSnapshotRows(Database& db,
                                            absl::FunctionRef<void(SnapshotRecord&&)> fn);
// fn(name, owner)
[[nodiscard]] absl::Status readNameRows(Database& db,
                                        absl::FunctionRef<void(std::string&&, std::string&&)> fn);

}  // namespace berth::store
