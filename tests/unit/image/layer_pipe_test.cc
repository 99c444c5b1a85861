// Tests for LayerPipe: bytes in order, the end told only by finish(), back-pressure, a reader
// that stops, a writer that fails, and a blob handed over as its stored file.
#include "image/layer_pipe.h"

#include <fstream>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "unpack_test_tar.h"

namespace berth::image {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// Reads the pipe to its end: the bytes, or the error.
absl::StatusOr<std::string> readAll(LayerPipe& pipe) {
  std::string out;
  for (;;) {
    absl::StatusOr<absl::string_view> chunk = pipe.read();
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) return out;
    out.append(chunk->data(), chunk->size());
  }
}

TEST(LayerPipeTest, BytesPassInOrderAndEndOnlyWhenFinished) {
  LayerPipe pipe(1 << 20);
  ASSERT_TRUE(pipe.write("abc", 3).ok());
  ASSERT_TRUE(pipe.write("def", 3).ok());
  absl::StatusOr<absl::string_view> first = pipe.read();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "abc");
  // All written bytes read, but the writer has not said they are the whole, checked blob.
  absl::Notification got_end;
  absl::StatusOr<std::string> rest;
  std::thread reader([&] {
    rest = readAll(pipe);
    got_end.Notify();
  });
  EXPECT_FALSE(got_end.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  pipe.finish(absl::OkStatus());
  reader.join();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "def");
}

TEST(LayerPipeTest, WriterWaitsWhileTheBufferIsFull) {
  LayerPipe pipe(8);
  ASSERT_TRUE(pipe.write("12345678", 8).ok());
  absl::Notification wrote;
  std::thread writer([&] {
    EXPECT_TRUE(pipe.write("9", 1).ok());
    wrote.Notify();
  });
  EXPECT_FALSE(wrote.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  ASSERT_TRUE(pipe.read().ok());
  EXPECT_TRUE(wrote.WaitForNotificationWithTimeout(absl::Seconds(10)));
  writer.join();
  pipe.finish(absl::OkStatus());
  absl::StatusOr<std::string> rest = readAll(pipe);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, "9");
}

TEST(LayerPipeTest, ReaderThatStopsReleasesTheWriter) {
  LayerPipe pipe(4);
  ASSERT_TRUE(pipe.write("full", 4).ok());
  absl::Notification wrote;
  std::thread writer([&] {
    EXPECT_TRUE(pipe.write("more", 4).ok());
    wrote.Notify();
  });
  EXPECT_FALSE(wrote.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  pipe.close();
  EXPECT_TRUE(wrote.WaitForNotificationWithTimeout(absl::Seconds(10)));
  writer.join();
  // Later writes are dropped at once: the download goes on to check its digest.
  std::string big(1 << 20, 'x');
  EXPECT_TRUE(pipe.write(big.data(), big.size()).ok());
}

TEST(LayerPipeTest, WriterErrorReachesTheReader) {
  LayerPipe pipe;
  ASSERT_TRUE(pipe.write("partial", 7).ok());
  pipe.finish(absl::DataLossError("blob sha256:aa digest mismatch"));
  absl::StatusOr<std::string> all = readAll(pipe);
  EXPECT_EQ(all.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(all.status().message(), HasSubstr("digest mismatch"));
}

TEST(LayerPipeTest, StoredBlobIsReadFromItsFile) {
  TempDir dir;
  std::string path = dir / "blob";
  std::ofstream(path) << "stored blob";
  LayerPipe pipe;
  pipe.finishFromFile(path);
  EXPECT_TRUE(pipe.finished());
  absl::StatusOr<std::string> all = readAll(pipe);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, "stored blob");

  // Bytes that came through and a file too: that is a bug, not a layer.
  LayerPipe both;
  ASSERT_TRUE(both.write("x", 1).ok());
  both.finishFromFile(path);
  EXPECT_EQ(readAll(both).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace berth::image
