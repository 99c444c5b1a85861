// Row-level SQL for the store's tables. Statements are prepared once per connection.
#include "store/rows.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "store/codec.h"

namespace berth::store {
namespace {

template <typename... Args>
absl::Status runCached(Database& db, absl::string_view sql, const Args&... args) {
  BERTH_ASSIGN_OR_RETURN(Statement * stmt, db.cached(sql));
  return stmt->run(args...);
}

// For an UPDATE that must hit exactly the row the caller saw in memory.
template <typename... Args>
absl::Status updateOne(Database& db, absl::string_view what, absl::string_view sql,
                       const Args&... args) {
  BERTH_ASSIGN_OR_RETURN(Statement * stmt, db.cached(sql));
  BERTH_RETURN_IF_ERROR(stmt->run(args...));
  if (stmt->changes() != 1) {
    return absl::InternalError(absl::StrCat(what, ": row missing from the database"));
  }
  return absl::OkStatus();
}

// A row that cannot be turned back into a record: the message names it.
absl::Status badRow(const absl::Status& status, absl::string_view noun, absl::string_view id) {
  return absl::DataLossError(
      absl::StrCat("stored ", noun, " \"", id, "\" is unreadable: ", status.message()));
}

// Steps through `sql`, calling `row` for each result row; `row` may fail.
absl::Status forEachRow(Database& db, absl::string_view sql,
                        absl::FunctionRef<absl::Status(const Statement&)> row) {
  BERTH_ASSIGN_OR_RETURN(Statement query, db.prepare(sql));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool more, query.step());
    if (!more) return absl::OkStatus();
    BERTH_RETURN_IF_ERROR(row(query));
  }
}

}  // namespace

absl::Status insertSandboxRow(Database& db, const SandboxRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  return runCached(db,
                   "INSERT INTO sandboxes (id, name, state, config, data) VALUES (?, ?, ?, ?, ?)",
                   r.id, r.name, toString(r.state), Blob{r.config_bytes}, data);
}

absl::Status updateSandboxRow(Database& db, const SandboxRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  return updateOne(db, absl::StrCat("update pod sandbox \"", r.id, "\""),
                   "UPDATE sandboxes SET state = ?, config = ?, data = ? WHERE id = ?",
                   toString(r.state), Blob{r.config_bytes}, data, r.id);
}

absl::Status deleteSandboxRow(Database& db, absl::string_view id) {
  return runCached(db, "DELETE FROM sandboxes WHERE id = ?", id);
}

absl::Status insertContainerRow(Database& db, const ContainerRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  return runCached(db,
                   "INSERT INTO containers (id, sandbox_id, name, state, config, data) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   r.id, r.sandbox_id, r.name, toString(r.state), Blob{r.config_bytes}, data);
}

absl::Status updateContainerRow(Database& db, const ContainerRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  return updateOne(db, absl::StrCat("update container \"", r.id, "\""),
                   "UPDATE containers SET state = ?, config = ?, data = ? WHERE id = ?",
                   toString(r.state), Blob{r.config_bytes}, data, r.id);
}

absl::Status deleteContainerRow(Database& db, absl::string_view id) {
  return runCached(db, "DELETE FROM containers WHERE id = ?", id);
}

absl::Status upsertImageRow(Database& db, const ImageRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  return runCached(db,
                   "INSERT INTO images (id, data) VALUES (?, ?) "
                   "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                   r.id, data);
}

absl::Status deleteImageRow(Database& db, absl::string_view id) {
  BERTH_RETURN_IF_ERROR(runCached(db, "DELETE FROM image_refs WHERE image_id = ?", id));
  return runCached(db, "DELETE FROM images WHERE id = ?", id);
}

absl::Status upsertImageRefRow(Database& db, absl::string_view ref, absl::string_view image_id) {
  return runCached(db,
                   "INSERT INTO image_refs (reference, image_id) VALUES (?, ?) "
                   "ON CONFLICT (reference) DO UPDATE SET image_id = excluded.image_id",
                   ref, image_id);
}

absl::Status deleteImageRefRow(Database& db, absl::string_view ref) {
  return runCached(db, "DELETE FROM image_refs WHERE reference = ?", ref);
}

absl::Status insertSnapshotRow(Database& db, const SnapshotRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  BERTH_ASSIGN_OR_RETURN(
      Statement * stmt,
      db.cached("INSERT INTO snapshots (key, parent, kind, data) VALUES (?, ?, ?, ?)"));
  // The parent column is NULL for a base snapshot so that the foreign key does not apply.
  absl::Status status = r.parent.empty() ? stmt->bind(r.key, nullptr, toString(r.kind), data)
                                         : stmt->bind(r.key, r.parent, toString(r.kind), data);
  if (status.ok()) status = stmt->step().status();
  stmt->reset();
  return status;
}

absl::Status updateSnapshotRow(Database& db, const SnapshotRecord& r) {
  BERTH_ASSIGN_OR_RETURN(std::string data, encodeData(r));
  return updateOne(db, absl::StrCat("update snapshot \"", r.key, "\""),
                   "UPDATE snapshots SET data = ? WHERE key = ?", data, r.key);
}

absl::Status deleteSnapshotRow(Database& db, absl::string_view key) {
  return runCached(db, "DELETE FROM snapshots WHERE key = ?", key);
}

absl::Status insertNameRow(Database& db, absl::string_view name, absl::string_view owner) {
  return runCached(db, "INSERT INTO names (name, owner) VALUES (?, ?)", name, owner);
}

absl::Status deleteNameRow(Database& db, absl::string_view name, absl::string_view owner) {
  return runCached(db, "DELETE FROM names WHERE name = ? AND owner = ?", name, owner);
}

absl::Status readSandboxRows(Database& db, absl::FunctionRef<void(SandboxRecord&&)> fn) {
  return forEachRow(db, "SELECT id, name, state, config, data FROM sandboxes",
                    [&](const Statement& q) -> absl::Status {
                      SandboxRecord r;
                      r.id = q.columnText(0);
                      r.name = q.columnText(1);
                      absl::StatusOr<SandboxState> state = parseSandboxState(q.columnText(2));
                      if (!state.ok()) return badRow(state.status(), "pod sandbox", r.id);
                      r.state = *state;
                      r.config_bytes = q.columnBlob(3);
                      absl::Status status = decodeData(q.columnText(4), r);
                      if (!status.ok()) return badRow(status, "pod sandbox", r.id);
                      fn(std::move(r));
                      return absl::OkStatus();
                    });
}

absl::Status readContainerRows(Database& db, absl::FunctionRef<void(ContainerRecord&&)> fn) {
  return forEachRow(db, "SELECT id, sandbox_id, name, state, config, data FROM containers",
                    [&](const Statement& q) -> absl::Status {
                      ContainerRecord r;
                      r.id = q.columnText(0);
                      r.sandbox_id = q.columnText(1);
                      r.name = q.columnText(2);
                      absl::StatusOr<ContainerState> state = parseContainerState(q.columnText(3));
                      if (!state.ok()) return badRow(state.status(), "container", r.id);
                      r.state = *state;
                      r.config_bytes = q.columnBlob(4);
                      absl::Status status = decodeData(q.columnText(5), r);
                      if (!status.ok()) return badRow(status, "container", r.id);
                      fn(std::move(r));
                      return absl::OkStatus();
                    });
}

absl::Status readImageRows(Database& db, absl::FunctionRef<void(ImageRecord&&)> fn) {
  return forEachRow(db, "SELECT id, data FROM images", [&](const Statement& q) -> absl::Status {
    ImageRecord r;
    r.id = q.columnText(0);
    absl::Status status = decodeData(q.columnText(1), r);
    if (!status.ok()) return badRow(status, "image", r.id);
    fn(std::move(r));
    return absl::OkStatus();
  });
}

absl::Status readImageRefRows(Database& db,
                              absl::FunctionRef<void(std::string&&, std::string&&)> fn) {
  return forEachRow(db, "SELECT reference, image_id FROM image_refs",
                    [&](const Statement& q) -> absl::Status {
                      fn(q.columnText(0), q.columnText(1));
                      return absl::OkStatus();
                    });
}

absl::Status readSnapshotRows(Database& db, absl::FunctionRef<void(SnapshotRecord&&)> fn) {
  return forEachRow(db, "SELECT key, parent, kind, data FROM snapshots",
                    [&](const Statement& q) -> absl::Status {
                      SnapshotRecord r;
                      r.key = q.columnText(0);
                      r.parent = q.columnText(1);  // NULL reads as ""
                      absl::StatusOr<SnapshotKind> kind = parseSnapshotKind(q.columnText(2));
                      if (!kind.ok()) return badRow(kind.status(), "snapshot", r.key);
                      r.kind = *kind;
                      absl::Status status = decodeData(q.columnText(3), r);
                      if (!status.ok()) return badRow(status, "snapshot", r.key);
                      fn(std::move(r));
                      return absl::OkStatus();
                    });
}

absl::Status readNameRows(Database& db, absl::FunctionRef<void(std::string&&, std::string&&)> fn) {
  return forEachRow(db, "SELECT name, owner FROM names", [&](const Statement& q) -> absl::Status {
    fn(q.columnText(0), q.columnText(1));
    return absl::OkStatus();
  });
}

}  // namespace berth::store
