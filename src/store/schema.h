// The store's SQLite schema as numbered forward migrations, and connection set-up.
#pragma once

#include "absl/status/status.h"
#include "store/sqlite.h"

namespace berth::store {

// The schema version this code writes; kept in the database as PRAGMA user_version.
inline constexpr int kSchemaVersion = 5;

// Configures the connection (WAL, synchronous=FULL, foreign keys, busy timeout) and brings the
// schema forward to kSchemaVersion, each step in its own transaction. A database whose
// version is newer than kSchemaVersion is refused with FailedPrecondition and left untouched.
[[nodiscard]] absl::Status initializeSchema(Database& db);

}  // namespace berth::store
