// Thin RAII layer over the SQLite C API: connection, prepared statements, transactions, and
// the mapping of SQLite result codes to absl::Status.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace berth::store {

// Turns an SQLite result code into a status naming the operation and carrying SQLite's
// message: BUSY/LOCKED → Unavailable; primary-key/unique constraint → AlreadyExists; other
// constraints (foreign key, not null, check) → FailedPrecondition; anything else → Internal.
[[nodiscard]] absl::Status sqliteStatus(sqlite3* db, int rc, absl::string_view op);

// A value bound as a BLOB rather than TEXT (it may hold any bytes).
struct Blob {
  absl::string_view bytes;
};

// A prepared statement. Not thread-safe: used under the owner's lock.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds parameters 1..N in order.
  template <typename... Args>
  [[nodiscard]] absl::Status bind(const Args&... args) {
    [[maybe_unused]] int index = 0;
    absl::Status status;
    [[maybe_unused]] auto bindNext = [&](const auto& arg) {
      if (status.ok()) status = bindOne(++index, arg);
    };
    (bindNext(args), ...);
    return status;
  }

  // Advances: true when a row is ready, false when done.
  [[nodiscard]] absl::StatusOr<bool> step();

  // Binds, runs to completion and resets: for INSERT/UPDATE/DELETE.
  template <typename... Args>
  [[nodiscard]] absl::Status run(const Args&... args) {
    absl::Status status = bind(args...);
    if (status.ok()) status = step().status();
    reset();
    return status;
  }

  // Makes the statement ready to be bound and run again.
  void reset();

  // Rows changed by the last run.
  int64_t changes() const;

  int64_t columnInt(int col) const;
  std::string columnText(int col) const;
  std::string columnBlob(int col) const;
  bool columnIsNull(int col) const;
  absl::string_view sql() const;

 private:
  [[nodiscard]] absl::Status bindOne(int index, absl::string_view value);
  [[nodiscard]] absl::Status bindOne(int index, const std::string& value) {
    return bindOne(index, absl::string_view(value));
  }
  [[nodiscard]] absl::Status bindOne(int index, const char* value) {
    return bindOne(index, absl::string_view(value));
  }
  [[nodiscard]] absl::Status bindOne(int index, Blob value);
  [[nodiscard]] absl::Status bindOne(int index, int64_t value);
  [[nodiscard]] absl::Status bindOne(int index, std::nullptr_t);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// One connection to a database file. Not thread-safe: the owner serialises its use.
class Database {
 public:
  // Opens (creating it with mode 0600 if missing) the database at `path`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Database>> open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows of interest.
  [[nodiscard]] absl::Status exec(absl::string_view sql);

  // Prepares a one-off statement.
  [[nodiscard]] absl::StatusOr<Statement> prepare(absl::string_view sql);

  // Prepares `sql` on first use and keeps it for the life of the connection.
  [[nodiscard]] absl::StatusOr<Statement*> cached(absl::string_view sql);

  // The first column of the first row of `sql` (e.g. a PRAGMA's value).
  [[nodiscard]] absl::StatusOr<std::string> queryText(absl::string_view sql);
  [[nodiscard]] absl::StatusOr<int64_t> queryInt(absl::string_view sql);

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  // Declared after db_ so that statements are finalized before the connection closes.
  absl::flat_hash_map<std::string, std::unique_ptr<Statement>> cache_;
};

// BEGIN IMMEDIATE … COMMIT; rolled back when destroyed uncommitted, so an early return
// leaves the database unchanged.
class Transaction {
 public:
  [[nodiscard]] static absl::StatusOr<Transaction> begin(Database& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  [[nodiscard]] absl::Status commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  void rollback();

  Database* db_;  // null once committed, rolled back or moved from
};

}  // namespace berth::store
