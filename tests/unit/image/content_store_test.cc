// The content-addressed blob store: verification, atomic publish, de-duplicated ingests.
#include "image/content_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/test_dir.h"

namespace berth::image {
namespace {

using Fill = ContentStore::Fill;
using Writer = ContentStore::Writer;

std::unique_ptr<ContentStore> openStore(const std::string& root) {
  auto store = ContentStore::open(root);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// A fill that writes `data` in chunks of `chunk` bytes and returns the first write error.
Fill chunked(const std::string& data, size_t chunk = 4096) {
  return [data, chunk](const Writer& write) -> absl::Status {
    for (size_t off = 0; off < data.size(); off += chunk) {
      absl::Status st = write(data.data() + off, std::min(chunk, data.size() - off));
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  };
}

size_t countFiles(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

int64_t sizeOf(const std::string& s) { return static_cast<int64_t>(s.size()); }

std::string randomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = openStore(root_);
    ASSERT_NE(store_, nullptr);
  }
  // Nothing is half-written anywhere: no ingest temp files, and `d` is not a blob.
  void expectNothingLeft(const Digest& d) {
    EXPECT_FALSE(store_->has(d));
    EXPECT_FALSE(std::filesystem::exists(store_->blobPath(d)));
    EXPECT_EQ(countFiles(dir_ / "content/ingest"), 0u);
  }

  testing::TestDir dir_;
  std::string root_ = dir_ / "content";
  std::unique_ptr<ContentStore> store_;
};

TEST_F(ContentStoreTest, PutThenHasSizeAndReadAll) {
  const std::string data = R"({"schemaVersion":2})";
  const Digest d = sha256Of(data);
  EXPECT_FALSE(store_->has(d));
  ASSERT_TRUE(store_->put(d, data).ok());
  EXPECT_TRUE(store_->has(d));
  EXPECT_EQ(store_->blobPath(d), root_ + "/blobs/sha256/" + d.hex());
  auto size = store_->size(d);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, data.size());
  auto read = store_->readAll(d, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, data);
  struct stat st {};
  ASSERT_EQ(::stat(store_->blobPath(d).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(store_->root(), root_);
  EXPECT_EQ(countFiles(root_ + "/ingest"), 0u);
}

TEST_F(ContentStoreTest, EmptyBlobRoundTrips) {
  const Digest d = sha256Of("");
  ASSERT_TRUE(store_->put(d, "").ok());
  auto read = store_->readAll(d, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST_F(ContentStoreTest, MissingBlobIsNotFoundNamingIt) {
  const Digest d = sha256Of("absent");
  EXPECT_FALSE(store_->has(d));
  auto size = store_->size(d);
  EXPECT_EQ(size.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(size.status().message().find(d.str()), absl::string_view::npos);
  auto read = store_->readAll(d, 100);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find(d.str()), absl::string_view::npos);
}

TEST_F(ContentStoreTest, ReadAllRefusesBlobsOverTheLimit) {
  const std::string data(1000, 'x');
  const Digest d = sha256Of(data);
  ASSERT_TRUE(store_->put(d, data).ok());
  EXPECT_EQ(store_->readAll(d, 999).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(store_->readAll(d, 1000).ok());
}

TEST_F(ContentStoreTest, ReadAllDetectsCorruptionOnDisk) {
  const std::string data = "config";
  const Digest d = sha256Of(data);
  ASSERT_TRUE(store_->put(d, data).ok());
  { std::ofstream(store_->blobPath(d), std::ios::trunc) << "tampered"; }
  EXPECT_EQ(store_->readAll(d, 100).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ContentStoreTest, DigestMismatchIsDataLossAndLeavesNothing) {
  const Digest want = sha256Of("the real layer");
  const std::string served = "something else!";  // same length is not required; size unchecked
  absl::Status st = store_->ingest(want, -1, chunked(served, 3));
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(
      st.message().find("blob " + want.str() + " digest mismatch: got " + sha256Of(served).str()),
      absl::string_view::npos)
      << st;
  expectNothingLeft(want);
  EXPECT_FALSE(store_->has(sha256Of(served)));
  EXPECT_TRUE(store_->list().empty());
}

TEST_F(ContentStoreTest, SizeMismatchIsDataLoss) {
  const std::string data = "0123456789";
  const Digest d = sha256Of(data);
  // Fewer bytes than the descriptor says.
  absl::Status st = store_->ingest(d, 11, chunked(data));
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("size mismatch"), absl::string_view::npos) << st;
  expectNothingLeft(d);
  // More bytes than the descriptor says: the write itself is refused.
  st = store_->ingest(d, 9, chunked(data, 4));
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("size mismatch"), absl::string_view::npos) << st;
  expectNothingLeft(d);
  // The right size works.
  EXPECT_TRUE(store_->ingest(d, 10, chunked(data, 4)).ok());
}

TEST_F(ContentStoreTest, WriteErrorFailsTheIngestEvenIfFillIgnoresIt) {
  const std::string data = "0123456789";
  const Digest d = sha256Of(data);
  absl::Status st = store_->ingest(d, 5, [&](const Writer& write) {
    (void)write(data.data(), sizeOf(data));  // too big; the error is dropped on purpose
    return absl::OkStatus();
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  expectNothingLeft(d);
}

TEST_F(ContentStoreTest, FillErrorAbortsAndLeavesNothing) {
  const std::string data = randomBytes(100000, 1);
  const Digest d = sha256Of(data);
  absl::Status st = store_->ingest(d, sizeOf(data), [&](const Writer& write) {
    EXPECT_TRUE(write(data.data(), 50000).ok());
    return absl::UnavailableError("registry connection reset");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "registry connection reset");
  expectNothingLeft(d);
}

TEST_F(ContentStoreTest, ExistingBlobIsNotTransferredAgain) {
  const std::string data = "layer";
  const Digest d = sha256Of(data);
  ASSERT_TRUE(store_->put(d, data).ok());
  int calls = 0;
  absl::Status st = store_->ingest(d, sizeOf(data), [&](const Writer&) {
    ++calls;
    return absl::InternalError("must not be called");
  });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(calls, 0);
}

TEST_F(ContentStoreTest, PartialBlobIsNeverVisible) {
  const std::string data = randomBytes(1 << 20, 2);
  const Digest d = sha256Of(data);
  absl::Status st = store_->ingest(d, sizeOf(data), [&](const Writer& write) {
    EXPECT_TRUE(write(data.data(), data.size() / 2).ok());
    // Half-way: the blob is not in blobs/, only an ingest temp file exists.
    EXPECT_FALSE(store_->has(d));
    EXPECT_FALSE(std::filesystem::exists(store_->blobPath(d)));
    EXPECT_TRUE(store_->list().empty());
    EXPECT_EQ(store_->usage().inodes, 0u);
    EXPECT_EQ(countFiles(root_ + "/blobs/sha256"), 0u);
    EXPECT_EQ(countFiles(root_ + "/ingest"), 1u);
    return write(data.data() + data.size() / 2, data.size() - data.size() / 2);
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(store_->has(d));
  EXPECT_EQ(countFiles(root_ + "/ingest"), 0u);
}

TEST_F(ContentStoreTest, LargeBlobInChunksVerifies) {
  const std::string data = randomBytes(20 << 20, 3);
  const Digest d = sha256Of(data);
  ASSERT_TRUE(store_->ingest(d, sizeOf(data), chunked(data, 64 << 10)).ok());
  auto size = store_->size(d);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, data.size());
  auto read = store_->readAll(d, 32 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read == data);
  // One flipped bit in the middle is caught.
  std::string bad = data;
  bad[bad.size() / 2] ^= 1;
  const Digest other = sha256Of(data + "x");
  EXPECT_EQ(store_->ingest(other, -1, chunked(bad, 64 << 10)).code(), absl::StatusCode::kDataLoss);
}

TEST_F(ContentStoreTest, ConcurrentIngestsOfOneDigestShareTheWork) {
  const std::string data = randomBytes(256 << 10, 4);
  const Digest d = sha256Of(data);
  std::atomic<int> fills{0};
  const Fill fill = [&](const Writer& write) {
    ++fills;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return chunked(data)(write);
  };
  std::vector<absl::Status> results(8);
  std::vector<std::thread> threads;
  threads.reserve(results.size());
  for (absl::Status& result : results) {
    threads.emplace_back([&] { result = store_->ingest(d, sizeOf(data), fill); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fills.load(), 1);
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st;
  EXPECT_TRUE(store_->has(d));
  EXPECT_EQ(countFiles(root_ + "/ingest"), 0u);
}

TEST_F(ContentStoreTest, IngestsOfDifferentDigestsRunInParallel) {
  // Each fill waits until both fills are running; if ingests were serialised the first would
  // time out and fail.
  std::atomic<int> running{0};
  auto fillOf = [&](const std::string& data) -> Fill {
    return [&running, data](const Writer& write) -> absl::Status {
      ++running;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (running.load() < 2) {
        if (std::chrono::steady_clock::now() > deadline) {
          return absl::DeadlineExceededError("the other fill never started");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return write(data.data(), data.size());
    };
  };
  const std::string a = "layer a", b = "layer b";
  absl::Status sa, sb;
  std::thread ta([&] { sa = store_->ingest(sha256Of(a), sizeOf(a), fillOf(a)); });
  std::thread tb([&] { sb = store_->ingest(sha256Of(b), sizeOf(b), fillOf(b)); });
  ta.join();
  tb.join();
  EXPECT_TRUE(sa.ok()) << sa;
  EXPECT_TRUE(sb.ok()) << sb;
  EXPECT_TRUE(store_->has(sha256Of(a)));
  EXPECT_TRUE(store_->has(sha256Of(b)));
}

TEST_F(ContentStoreTest, WhenTheFirstIngestFailsOneWaiterRetries) {
  const std::string data = randomBytes(64 << 10, 5);
  const Digest d = sha256Of(data);
  absl::Notification leader_started, release_leader;
  std::atomic<int> good_fills{0};

  absl::Status leader_status;
  std::thread leader([&] {
    leader_status = store_->ingest(d, sizeOf(data), [&](const Writer& write) {
      EXPECT_TRUE(write(data.data(), 1000).ok());
      leader_started.Notify();
      release_leader.WaitForNotification();
      return absl::CancelledError("pull cancelled");
    });
  });
  leader_started.WaitForNotification();

  const Fill good = [&](const Writer& write) {
    ++good_fills;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return chunked(data)(write);
  };
  std::vector<absl::Status> results(3);
  std::vector<std::thread> waiters;
  waiters.reserve(results.size());
  for (absl::Status& result : results) {
    waiters.emplace_back([&] { result = store_->ingest(d, sizeOf(data), good); });
  }
  // Wait until all three are queued behind the leader, then make the leader fail.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store_->waitersForTest(d) < results.size() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(store_->waitersForTest(d), results.size());
  release_leader.Notify();
  leader.join();
  for (auto& t : waiters) t.join();

  EXPECT_EQ(leader_status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(good_fills.load(), 1) << "exactly one waiter takes over";
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st;
  EXPECT_TRUE(store_->has(d));
  EXPECT_EQ(store_->waitersForTest(d), 0u);
  EXPECT_EQ(countFiles(root_ + "/ingest"), 0u);
}

TEST_F(ContentStoreTest, OpenRemovesStaleIngestFilesAndKeepsBlobs) {
  const std::string data = "kept";
  const Digest d = sha256Of(data);
  ASSERT_TRUE(store_->put(d, data).ok());
  { std::ofstream(root_ + "/ingest/0123456789ab-XXXXXX") << "half a layer"; }
  std::filesystem::create_directories(root_ + "/ingest/debris/sub");
  store_.reset();

  store_ = openStore(root_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(countFiles(root_ + "/ingest"), 0u);
  EXPECT_TRUE(store_->has(d));
  auto read = store_->readAll(d, 100);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, data);
}

TEST_F(ContentStoreTest, OpenCreatesPrivateDirectories) {
  struct stat st {};
  for (const char* sub : {"", "/blobs/sha256", "/ingest"}) {
    ASSERT_EQ(::stat((root_ + sub).c_str(), &st), 0) << sub;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u) << sub;
  }
}

TEST_F(ContentStoreTest, OpenFailsOnAFileRoot) {
  { std::ofstream(dir_ / "file") << "x"; }
  EXPECT_FALSE(ContentStore::open(dir_ / "file").ok());
  EXPECT_EQ(ContentStore::open("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ContentStoreTest, RemoveIsIdempotent) {
  const std::string data = "gone soon";
  const Digest d = sha256Of(data);
  ASSERT_TRUE(store_->put(d, data).ok());
  EXPECT_TRUE(store_->remove(d).ok());
  EXPECT_FALSE(store_->has(d));
  EXPECT_TRUE(store_->remove(d).ok());
  EXPECT_TRUE(store_->remove(sha256Of("never there")).ok());
  // It can be stored again afterwards.
  EXPECT_TRUE(store_->put(d, data).ok());
  EXPECT_TRUE(store_->has(d));
}

TEST_F(ContentStoreTest, ListAndUsageReflectContents) {
  EXPECT_TRUE(store_->list().empty());
  EXPECT_EQ(store_->usage().bytes, 0u);
  EXPECT_EQ(store_->usage().inodes, 0u);

  std::vector<Digest> digests;
  uint64_t total = 0;
  for (unsigned i = 0; i < 3; ++i) {
    const std::string data = randomBytes(size_t{16384} * (i + 1), 10 + i);
    digests.push_back(sha256Of(data));
    total += data.size();
    ASSERT_TRUE(store_->put(digests.back(), data).ok());
  }
  // Files that are not blobs are ignored.
  { std::ofstream(root_ + "/blobs/sha256/not-a-digest") << "x"; }
  std::sort(digests.begin(), digests.end());
  EXPECT_EQ(store_->list(), digests);

  ContentStore::Usage u = store_->usage();
  EXPECT_EQ(u.inodes, 4u);  // usage counts what is on disk, stray file included
  EXPECT_GE(u.bytes, total);

  ASSERT_TRUE(store_->remove(digests[2]).ok());
  std::filesystem::remove(root_ + "/blobs/sha256/not-a-digest");
  EXPECT_EQ(store_->list(), std::vector<Digest>(digests.begin(), digests.begin() + 2));
  ContentStore::Usage after = store_->usage();
  EXPECT_EQ(after.inodes, 2u);
  EXPECT_LT(after.bytes, u.bytes);
}

}  // namespace
}  // namespace berth::image
