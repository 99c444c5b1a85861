// Tests for the SQLite wrapper: error classes, transaction rollback, blobs and NULLs.
#include "store/sqlite.h"

#include <sqlite3.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace berth::store {
namespace {

using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Database>> db = Database::open(dir_.file("t.db"));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->exec("PRAGMA foreign_keys = ON;"
                          "CREATE TABLE p (id TEXT PRIMARY KEY, v BLOB);"
                          "CREATE TABLE c (id TEXT PRIMARY KEY, p TEXT REFERENCES p(id),"
                          "                n TEXT NOT NULL)")
                    .ok());
  }

  int64_t count(const char* table) {
    return *db_->queryInt(std::string("SELECT count(*) FROM ") + table);
  }

  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(SqliteTest, ConstraintsMapToStatusClasses) {
  Statement* insert_p = *db_->cached("INSERT INTO p (id, v) VALUES (?, ?)");
  ASSERT_TRUE(insert_p->run("a", Blob{""}).ok());
  absl::Status dup = insert_p->run("a", nullptr);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.message(), HasSubstr("INSERT INTO p"));
  EXPECT_THAT(dup.message(), HasSubstr("UNIQUE constraint failed"));

  Statement* insert_c = *db_->cached("INSERT INTO c (id, p, n) VALUES (?, ?, ?)");
  EXPECT_EQ(insert_c->run("x", "missing", "n").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(insert_c->run("x", "a", nullptr).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(insert_c->run("x", "a", "n").ok());

  EXPECT_EQ(db_->exec("SELEC nonsense").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(db_->prepare("SELECT * FROM nowhere").status().code(), absl::StatusCode::kInternal);
}

TEST_F(SqliteTest, BusyIsUnavailable) {
  EXPECT_EQ(sqliteStatus(nullptr, SQLITE_BUSY, "commit").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sqliteStatus(nullptr, SQLITE_LOCKED, "commit").code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(sqliteStatus(nullptr, SQLITE_OK, "x").ok());
  EXPECT_THAT(sqliteStatus(nullptr, SQLITE_IOERR, "write page").message(),
              HasSubstr("write page: "));
}

TEST_F(SqliteTest, UncommittedTransactionRollsBack) {
  {
    absl::StatusOr<Transaction> tx = Transaction::begin(*db_);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db_->exec("INSERT INTO p VALUES ('a', NULL)").ok());
  }  // dropped without commit
  EXPECT_EQ(count("p"), 0);
  {
    absl::StatusOr<Transaction> tx = Transaction::begin(*db_);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db_->exec("INSERT INTO p VALUES ('a', NULL)").ok());
    ASSERT_TRUE(tx->commit().ok());
    EXPECT_FALSE(tx->commit().ok());  // only once
  }
  EXPECT_EQ(count("p"), 1);
}

TEST_F(SqliteTest, BlobsKeepEveryByteAndNullReadsEmpty) {
  const std::string bytes("\x00\x01\xff\x00", 4);
  ASSERT_TRUE((*db_->cached("INSERT INTO p (id, v) VALUES (?, ?)"))->run("b", Blob{bytes}).ok());
  ASSERT_TRUE((*db_->cached("INSERT INTO p (id, v) VALUES (?, ?)"))->run("n", nullptr).ok());
  absl::StatusOr<Statement> q = db_->prepare("SELECT v FROM p ORDER BY id");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(*q->step());
  EXPECT_EQ(q->columnBlob(0), bytes);
  ASSERT_TRUE(*q->step());
  EXPECT_TRUE(q->columnIsNull(0));
  EXPECT_EQ(q->columnText(0), "");
  EXPECT_FALSE(*q->step());
}

}  // namespace
}  // namespace berth::store
