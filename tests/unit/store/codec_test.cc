// Tests for the JSON data-column codec: unknown keys ignored, missing keys defaulted, bad
// input reported with the right status class.
#include "store/codec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace berth::store {
namespace {

using ::testing::HasSubstr;

TEST(CodecTest, EveryDataFieldRoundTrips) {
  SandboxRecord sandbox = testing::fullSandbox("sb");
  SandboxRecord sandbox_out;
  ASSERT_TRUE(decodeData(*encodeData(sandbox), sandbox_out).ok());
  // Columns (id, name, state, config) are not in the data column.
  sandbox_out.id = sandbox.id;
  sandbox_out.name = sandbox.name;
  sandbox_out.state = sandbox.state;
  sandbox_out.config_bytes = sandbox.config_bytes;
  EXPECT_EQ(sandbox_out, sandbox);

  ContainerRecord container = testing::fullContainer("ct", "sb");
  ContainerRecord container_out;
  ASSERT_TRUE(decodeData(*encodeData(container), container_out).ok());
  container_out.id = container.id;
  container_out.sandbox_id = container.sandbox_id;
  container_out.name = container.name;
  container_out.state = container.state;
  container_out.config_bytes = container.config_bytes;
  EXPECT_EQ(container_out, container);

  ImageRecord image = testing::fullImage('a');
  ImageRecord image_out;
  ASSERT_TRUE(decodeData(*encodeData(image), image_out).ok());
  image_out.id = image.id;
  EXPECT_EQ(image_out, image);

  SnapshotRecord snapshot = testing::fullSnapshot("k", "p", SnapshotKind::kCommitted);
  SnapshotRecord snapshot_out;
  ASSERT_TRUE(decodeData(*encodeData(snapshot), snapshot_out).ok());
  snapshot_out.key = snapshot.key;
  snapshot_out.parent = snapshot.parent;
  snapshot_out.kind = snapshot.kind;
  EXPECT_EQ(snapshot_out, snapshot);
}

TEST(CodecTest, UnknownKeysAreIgnoredAndMissingKeysDefault) {
  ContainerRecord r;
  ASSERT_TRUE(
      decodeData(R"({"exit_code":9,"from_the_future":{"a":1},"metadata":{"name":"x"}})", r).ok());
  EXPECT_EQ(r.exit_code, 9);
  EXPECT_EQ(r.metadata.name, "x");
  EXPECT_EQ(r.metadata.attempt, 0u);
  EXPECT_EQ(r.pending, Pending::kNone);
  EXPECT_TRUE(r.labels.empty());

  ImageRecord image;
  ASSERT_TRUE(decodeData("{}", image).ok());
  EXPECT_EQ(image, ImageRecord{});
  ASSERT_TRUE(decodeData(R"({"size":null})", image).ok());  // null reads as missing
  EXPECT_EQ(image.size, 0u);
}

struct BadDataCase {
  std::string data;
  std::string message;
};

TEST(CodecTest, BadDataIsDataLoss) {
  const std::vector<BadDataCase> kCases = {
      {"", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {"{\"pid\": 1", "not a JSON object"},
      {R"({"pid":"seven"})", "bad data column"},
      {R"({"labels":["a"]})", "bad data column"},
  };
  for (const BadDataCase& c : kCases) {
    SandboxRecord r;
    absl::Status status = decodeData(c.data, r);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << c.data;
    EXPECT_THAT(status.message(), HasSubstr(c.message)) << c.data;
  }
}

TEST(CodecTest, InvalidUtf8IsInvalidArgument) {
  SandboxRecord r = testing::fullSandbox("sb");
  r.labels["bad"] = "\xc3\x28";
  absl::StatusOr<std::string> encoded = encodeData(r);
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::store
