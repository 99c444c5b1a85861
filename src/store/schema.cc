// Schema migrations. Rows keep indexed fields in real columns and everything else in a JSON
// `data` column, so new record fields need no migration; steps here are for new tables,
// columns that must be queried, and indexes.
#include "store/schema.h"

#include <sqlite3.h>

#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "store/internal.h"

namespace berth::store {
namespace {

struct Migration {
  int version;
  absl::string_view what;
  absl::string_view sql;
};

// Append only: a released step is never edited, since databases in the field already ran it.
constexpr auto kMigrations = std::to_array<Migration>({
    {1, "base tables", R"sql(
      CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        config BLOB NOT NULL,
        data TEXT NOT NULL
      );
      CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        sandbox_id TEXT NOT NULL REFERENCES sandboxes(id),
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        config BLOB NOT NULL,
        data TEXT NOT NULL
      );
      CREATE INDEX containers_sandbox_id ON containers(sandbox_id);
      CREATE TABLE images (
        id TEXT PRIMARY KEY,
        data TEXT NOT NULL
      );
      CREATE TABLE image_refs (
        reference TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id)
      );
      CREATE TABLE names (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL
      );
    )sql"},
    {2, "snapshots table, image_refs by image", R"sql(
      CREATE TABLE snapshots (
        key TEXT PRIMARY KEY,
        parent TEXT REFERENCES snapshots(key),
        kind TEXT NOT NULL,
        data TEXT NOT NULL
      );
      CREATE INDEX snapshots_parent ON snapshots(parent);
      CREATE INDEX image_refs_image_id ON image_refs(image_id);
    )sql"},
    // Layers unpacked by earlier berths were never checked against the diff ids of the image
    // configs that named them, and are keyed by chain id: one of them may hold another
    // registry's content. They move out of the way (a pull or a container of an image that
    // needs them unpacks its layers again, checked) and stay only while a container's rootfs
    // sits on them; garbage collection removes them after that.
    {3, "quarantine layers that were never checked against their diff ids", R"sql(
      UPDATE snapshots SET
        key = CASE WHEN kind = 'committed' THEN 'unverified/' || key ELSE key END,
        parent = CASE WHEN parent IS NULL THEN NULL ELSE 'unverified/' || parent END;
    )sql"},
    // Free-form `extra_json` text (camelCase keys) becomes typed fields of the records.
    {4, "typed pod and container fields instead of free-form extra_json", R"sql(
      UPDATE sandboxes SET data = json_set(data, '$.extra_json', '{}')
        WHERE NOT json_valid(coalesce(data ->> '$.extra_json', ''));
      UPDATE sandboxes SET data = json_remove(json_set(data,
          '$.shim_dir', coalesce((data ->> '$.extra_json') ->> '$.shimDir', ''),
          '$.bundle_dir', coalesce((data ->> '$.extra_json') ->> '$.bundle', ''),
          '$.image', coalesce((data ->> '$.extra_json') ->> '$.image', ''),
          '$.snapshot_key', coalesce((data ->> '$.extra_json') ->> '$.snapshotKey', ''),
          '$.snapshotter', coalesce((data ->> '$.extra_json') ->> '$.snapshotter', ''),
          '$.runtime_type', coalesce((data ->> '$.extra_json') ->> '$.runtimeType', ''),
          '$.pause_args', json(coalesce((data ->> '$.extra_json') -> '$.args', '[]')),
          -- `|| ''` makes it text: stored as a string, not as the JSON object it holds
          '$.config_json', coalesce(((data ->> '$.extra_json') -> '$.config') || '', '{}'),
          '$.network_torn_down', json(CASE WHEN (data ->> '$.extra_json') ->> '$.networkTornDown'
                                      THEN 'true' ELSE 'false' END),
          '$.netns_closed', json(CASE WHEN (data ->> '$.extra_json') ->> '$.netnsClosed'
                                 THEN 'true' ELSE 'false' END)),
        '$.extra_json');
      UPDATE containers SET data = json_set(data, '$.extra_json', '{}')
        WHERE NOT json_valid(coalesce(data ->> '$.extra_json', ''));
      UPDATE containers SET data = json_remove(json_set(data,
          '$.rootfs', coalesce((data ->> '$.extra_json') ->> '$.rootfs', ''),
          '$.rootfs_mounts', coalesce((data ->> '$.extra_json') ->> '$.rootfsMounts', 1),
          '$.bundle_dir', coalesce((data ->> '$.extra_json') ->> '$.bundle', ''),
          '$.stop_signal', coalesce((data ->> '$.extra_json') ->> '$.stopSignal', ''),
          '$.runtime_type', coalesce((data ->> '$.extra_json') ->> '$.runtimeType', ''),
          '$.snapshotter', coalesce((data ->> '$.extra_json') ->> '$.snapshotter', ''),
          '$.task_deleted', json(CASE WHEN (data ->> '$.extra_json') ->> '$.taskDeleted'
                                 THEN 'true' ELSE 'false' END)),
        '$.extra_json');
    )sql"},
    // A container's `removing` flag becomes its pending operation (store/state.h: Pending).
    {5, "a pending operation instead of the removing flag", R"sql(
      UPDATE containers SET data = json_remove(json_set(data, '$.pending',
          CASE WHEN data ->> '$.removing' THEN 'removing' ELSE '' END), '$.removing');
    )sql"},
});

static_assert(kMigrations.size() == kSchemaVersion, "one migration step per version");

absl::StatusOr<int64_t> userVersion(Database& db) { return db.queryInt("PRAGMA user_version"); }

absl::Status refuseNewer(int64_t version) {
  return absl::FailedPreconditionError(
      absl::StrCat("schema version ", version, " is newer than version ", kSchemaVersion,
                   " known to this berth; refusing to open it (downgrade is not supported)"));
}

absl::Status configure(Database& db) {
  // Without this, a second opener (e.g. a debugging sqlite3 shell) fails writers at once.
  BERTH_RETURN_IF_ERROR(
      sqliteStatus(db.handle(), sqlite3_busy_timeout(db.handle(), 5000), "set busy timeout"));
  BERTH_ASSIGN_OR_RETURN(std::string mode, db.queryText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot enable WAL journal (got \"", mode, "\")"));
  }
  // FULL: a commit is on disk before we acknowledge it, so kill -9 or power loss keeps it.
  BERTH_RETURN_IF_ERROR(db.exec("PRAGMA synchronous = FULL"));
  return db.exec("PRAGMA foreign_keys = ON");
}

absl::Status runStep(Database& db, const Migration& step) {
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db));
  // Re-read inside the transaction: another opener may have migrated meanwhile.
  BERTH_ASSIGN_OR_RETURN(int64_t current, userVersion(db));
  if (current >= step.version) return absl::OkStatus();
  BERTH_RETURN_IF_ERROR(db.exec(step.sql));
  BERTH_RETURN_IF_ERROR(db.exec(absl::StrCat("PRAGMA user_version = ", step.version)));
  return tx.commit();
}

}  // namespace

absl::Status initializeSchema(Database& db) {
  // Check before configure(): switching to WAL would already write to a newer database.
  BERTH_ASSIGN_OR_RETURN(int64_t version, userVersion(db));
  if (version > kSchemaVersion) return refuseNewer(version);
  BERTH_RETURN_IF_ERROR(configure(db));

  for (const Migration& step : kMigrations) {
    if (step.version <= version) continue;
    absl::Status status = runStep(db, step);
    if (!status.ok()) {
      return annotate(
          status, absl::StrCat("migrate to schema version ", step.version, " (", step.what, ")"));
    }
    storeLog()->info("migrated {} to schema version {} ({})", db.path(), step.version, step.what);
  }
  BERTH_ASSIGN_OR_RETURN(version, userVersion(db));
  if (version > kSchemaVersion) return refuseNewer(version);
  return absl::OkStatus();
}

}  // namespace berth::store
