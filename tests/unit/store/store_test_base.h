// Test fixture shared by the store tests: a store in a temp dir that can be reopened.
#pragma once

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "store/store.h"
#include "test_util.h"

namespace berth::store::testing {

class StoreTestBase : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  std::string dbPath() const { return dir_.file("store.db"); }

  // Closes the store (if open) and opens it again from disk: what berthd does after kill -9.
  void reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> opened = Store::open(dbPath());
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace berth::store::testing
