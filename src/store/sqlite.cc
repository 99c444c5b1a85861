// RAII wrappers over sqlite3 / sqlite3_stmt, and SQLite result codes → absl::Status.
#include "store/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace berth::store {

absl::Status sqliteStatus(sqlite3* db, int rc, absl::string_view op) {
  // sqlite3_errmsg describes the most recent failure, which may not be `rc`'s.
  const char* detail = (db != nullptr && sqlite3_extended_errcode(db) == rc) ? sqlite3_errmsg(db)
                                                                             : sqlite3_errstr(rc);
  std::string message = absl::StrCat(op, ": ", detail);
  switch (rc & 0xff) {
    case SQLITE_OK:
      return absl::OkStatus();
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

namespace {

// The statement's first words (e.g. "INSERT INTO sandboxes"), enough to name it in errors.
absl::string_view shortSql(absl::string_view sql) {
  size_t end = sql.find_first_of("(\n");
  if (end == absl::string_view::npos) end = sql.size();
  if (end > 48) end = 48;
  while (end > 0 && sql[end - 1] == ' ') --end;
  return sql.substr(0, end);
}

}  // namespace

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

absl::StatusOr<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteStatus(db_, rc, shortSql(sql()));
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::changes() const { return sqlite3_changes64(db_); }

int64_t Statement::columnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::columnText(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  return {text, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))};
}

std::string Statement::columnBlob(int col) const {
  const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  if (blob == nullptr) return {};
  return {blob, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))};
}

bool Statement::columnIsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

absl::string_view Statement::sql() const {
  const char* text = sqlite3_sql(stmt_);
  return text == nullptr ? absl::string_view() : absl::string_view(text);
}

absl::Status Statement::bindOne(int index, absl::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so callers may pass temporaries.
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return sqliteStatus(db_, rc, absl::StrCat("bind parameter ", index));
}

absl::Status Statement::bindOne(int index, Blob value) {
  // A zero-length blob must still be a blob, not NULL, so never pass a null pointer.
  const char* data = value.bytes.empty() ? "" : value.bytes.data();
  int rc = sqlite3_bind_blob64(stmt_, index, data, value.bytes.size(), SQLITE_TRANSIENT);
  return sqliteStatus(db_, rc, absl::StrCat("bind parameter ", index));
}

absl::Status Statement::bindOne(int index, int64_t value) {
  return sqliteStatus(db_, sqlite3_bind_int64(stmt_, index, value),
                      absl::StrCat("bind parameter ", index));
}

absl::Status Statement::bindOne(int index, std::nullptr_t) {
  return sqliteStatus(db_, sqlite3_bind_null(stmt_, index), absl::StrCat("bind parameter ", index));
}

absl::StatusOr<std::unique_ptr<Database>> Database::open(const std::string& path) {
  // Create the file ourselves so that it gets mode 0600; SQLite gives the -wal and -shm
  // files the database file's mode.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return lastErrnoStatus(absl::StrCat("create database file ", path));
  ::close(fd);

  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = sqliteStatus(db, rc, absl::StrCat("open database ", path));
    sqlite3_close(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

absl::Status Database::exec(absl::string_view sql) {
  std::string copy(sql);  // sqlite3_exec wants a NUL-terminated string
  int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, nullptr);
  return sqliteStatus(db_, rc, shortSql(sql));
}

absl::StatusOr<Statement> Database::prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return sqliteStatus(db_, rc, absl::StrCat("prepare \"", shortSql(sql), "\""));
  }
  return Statement(db_, stmt);
}

absl::StatusOr<Statement*> Database::cached(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second.get();
  BERTH_ASSIGN_OR_RETURN(Statement stmt, prepare(sql));
  auto owned = std::make_unique<Statement>(std::move(stmt));
  Statement* raw = owned.get();
  cache_.emplace(std::string(sql), std::move(owned));
  return raw;
}

absl::StatusOr<std::string> Database::queryText(absl::string_view sql) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, prepare(sql));
  BERTH_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return absl::InternalError(absl::StrCat(shortSql(sql), ": returned no row"));
  return stmt.columnText(0);
}

absl::StatusOr<int64_t> Database::queryInt(absl::string_view sql) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, prepare(sql));
  BERTH_ASSIGN_OR_RETURN(bool row, stmt.step());
  if (!row) return absl::InternalError(absl::StrCat(shortSql(sql), ": returned no row"));
  return stmt.columnInt(0);
}

absl::StatusOr<Transaction> Transaction::begin(Database& db) {
  BERTH_ASSIGN_OR_RETURN(Statement * stmt, db.cached("BEGIN IMMEDIATE"));
  BERTH_RETURN_IF_ERROR(stmt->run());
  return Transaction(&db);
}

Transaction::~Transaction() { rollback(); }

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

absl::Status Transaction::commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction is not open");
  absl::StatusOr<Statement*> stmt = db_->cached("COMMIT");
  absl::Status status = stmt.ok() ? (*stmt)->run() : stmt.status();
  if (!status.ok()) {
    rollback();
    return status;
  }
  db_ = nullptr;
  return absl::OkStatus();
}

void Transaction::rollback() {
  if (db_ == nullptr) return;
  // After some errors SQLite has already rolled back; a second ROLLBACK would fail.
  if (sqlite3_get_autocommit(db_->handle()) == 0) {
    absl::StatusOr<Statement*> stmt = db_->cached("ROLLBACK");
    if (stmt.ok()) (*stmt)->run().IgnoreError();
  }
  db_ = nullptr;
}

}  // namespace berth::store
