// Digest parsing and SHA-256.
#include "image/digest.h"

#include <gtest/gtest.h>

namespace berth::image {
namespace {

TEST(DigestTest, ParsesValidSha256) {
  std::string text = "sha256:" + std::string(64, 'a');
  auto d = Digest::parse(text);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->str(), text);
  EXPECT_EQ(d->hex(), std::string(64, 'a'));
}

TEST(DigestTest, RejectsMalformed) {
  for (const std::string& bad :
       {std::string("sha256:abc"), "sha512:" + std::string(64, 'a'), "sha256:" + std::string(64, 'A'),
        std::string(64, 'a'), "sha256:" + std::string(63, 'a') + "g", std::string("")}) {
    auto d = Digest::parse(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(DigestTest, Sha256KnownVectors) {
  EXPECT_EQ(sha256Of("").str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("ab");
  h.update("c");
  EXPECT_EQ(h.finish().str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace berth::image
