// Manifest, index and config parsing; platform choice; chain ids; the CRI user forms.
#include "image/manifest.h"

#include <gtest/gtest.h>

#include "image/digest.h"

namespace berth::image {
namespace {

std::string d(char c) { return "sha256:" + std::string(64, c); }

TEST(ManifestTest, ParsesManifest) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + d('a') +
                     R"(","size":12},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + d('b') +
                     R"(","size":100},{"mediaType":"x","digest":")" + d('c') + R"(","size":5}]})";
  auto m = parseManifest(body);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config.digest, d('a'));
  EXPECT_EQ(m->config.size, 12);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].digest, d('c'));
  EXPECT_FALSE(isIndex(kOciManifest, body));
}

TEST(ManifestTest, RejectsBadManifests) {
  for (const char* body :
       {"not json", "[]", R"({"schemaVersion":1})", R"({"schemaVersion":2,"layers":[]})",
        R"({"schemaVersion":2,"config":{"digest":"sha256:zz"},"layers":[]})"}) {
    EXPECT_EQ(parseManifest(body).status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(ManifestTest, ChoosesPlatformFromIndex) {
  std::string body = R"({"schemaVersion":2,"manifests":[
    {"mediaType":"m","digest":")" + d('1') + R"(","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
    {"mediaType":"m","digest":")" + d('2') + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  EXPECT_TRUE(isIndex("", body)) << "detected by content";
  auto entries = parseIndex(body);
  ASSERT_TRUE(entries.ok()) << entries.status();
  auto amd = choosePlatform(*entries, "linux", "amd64");
  ASSERT_TRUE(amd.ok());
  EXPECT_EQ(amd->digest, d('2'));
  auto s390 = choosePlatform(*entries, "linux", "s390x");
  EXPECT_EQ(s390.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s390.status().message().find("linux/arm64/v8"), absl::string_view::npos);
}

TEST(ManifestTest, ConfigAndChainIds) {
  std::string body = R"({"architecture":"amd64","os":"linux","config":{"User":"www-data"},
    "rootfs":{"type":"layers","diff_ids":[")" + d('1') + R"(",")" + d('2') + R"("]}})";
  auto c = parseImageConfig(body);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->user, "www-data");
  auto chain = chainIds(c->diff_ids);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], d('1'));
  EXPECT_EQ(chain[1], sha256Of(d('1') + " " + d('2')).str());
  EXPECT_FALSE(parseImageConfig(R"({"rootfs":{}})").ok());
}

struct UserCase {
  const char* user;
  bool has_uid;
  int64_t uid;
  const char* name;
};

class ImageUserTest : public ::testing::TestWithParam<UserCase> {};

TEST_P(ImageUserTest, Forms) {
  ImageUser u = parseImageUser(GetParam().user);
  EXPECT_EQ(u.has_uid, GetParam().has_uid);
  EXPECT_EQ(u.uid, GetParam().uid);
  EXPECT_EQ(u.username, GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(Cases, ImageUserTest,
                         ::testing::Values(UserCase{"1002", true, 1002, ""},
                                           UserCase{"1003:users", true, 1003, ""},
                                           UserCase{"www-data", false, 0, "www-data"},
                                           UserCase{"www-data:www-data", false, 0, "www-data"},
                                           UserCase{"", false, 0, ""},
                                           UserCase{"0", true, 0, ""}));

}  // namespace
}  // namespace berth::image
