// Table-driven tests of image reference parsing and normalisation.
#include "image/reference.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::image {
namespace {

const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kDigest = "sha256:" + kHex;

struct GoodCase {
  std::string input;
  std::string domain, path, tag, digest;
  std::string normalised;
};

class ReferenceGoodTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(ReferenceGoodTest, ParsesAndNormalises) {
  const GoodCase& c = GetParam();
  auto ref = parseReference(c.input);
  ASSERT_TRUE(ref.ok()) << c.input << ": " << ref.status();
  EXPECT_EQ(ref->domain, c.domain) << c.input;
  EXPECT_EQ(ref->path, c.path) << c.input;
  EXPECT_EQ(ref->tag, c.tag) << c.input;
  EXPECT_EQ(ref->digest, c.digest) << c.input;
  EXPECT_EQ(ref->str(), c.normalised) << c.input;
  // The normalised form parses to the same reference.
  auto again = parseReference(ref->str());
  ASSERT_TRUE(again.ok()) << ref->str() << ": " << again.status();
  EXPECT_EQ(*again, *ref);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReferenceGoodTest,
    ::testing::Values(
        GoodCase{"busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        GoodCase{"busybox:1.36", "docker.io", "library/busybox", "1.36", "",
                 "docker.io/library/busybox:1.36"},
        GoodCase{"user/img", "docker.io", "user/img", "latest", "", "docker.io/user/img:latest"},
        GoodCase{"user/img:v1", "docker.io", "user/img", "v1", "", "docker.io/user/img:v1"},
        GoodCase{"docker.io/busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        GoodCase{"docker.io/library/busybox:1", "docker.io", "library/busybox", "1", "",
                 "docker.io/library/busybox:1"},
        GoodCase{"index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", "",
                 "docker.io/library/busybox:latest"},
        GoodCase{"index.docker.io/nginx", "docker.io", "library/nginx", "latest", "",
                 "docker.io/library/nginx:latest"},
        GoodCase{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", "",
                 "registry.k8s.io/pause:3.9"},
        GoodCase{"registry.k8s.io/e2e-test-images/busybox:1.29-2", "registry.k8s.io",
                 "e2e-test-images/busybox", "1.29-2", "",
                 "registry.k8s.io/e2e-test-images/busybox:1.29-2"},
        GoodCase{"127.0.0.1:5000/berth-test/busybox:1.0", "127.0.0.1:5000", "berth-test/busybox",
                 "1.0", "", "127.0.0.1:5000/berth-test/busybox:1.0"},
        GoodCase{"localhost/foo", "localhost", "foo", "latest", "", "localhost/foo:latest"},
        GoodCase{"localhost:5000/ns/name:tag", "localhost:5000", "ns/name", "tag", "",
                 "localhost:5000/ns/name:tag"},
        GoodCase{"myhost:5000/name", "myhost:5000", "name", "latest", "",
                 "myhost:5000/name:latest"},
        GoodCase{"[::1]:5000/foo/bar:baz", "[::1]:5000", "foo/bar", "baz", "",
                 "[::1]:5000/foo/bar:baz"},
        GoodCase{"[fe80::1]/foo", "[fe80::1]", "foo", "latest", "", "[fe80::1]/foo:latest"},
        GoodCase{"Example.COM/foo", "Example.COM", "foo", "latest", "", "Example.COM/foo:latest"},
        GoodCase{"quay.io/a/b/c/d:e", "quay.io", "a/b/c/d", "e", "", "quay.io/a/b/c/d:e"},
        GoodCase{"busybox@" + kDigest, "docker.io", "library/busybox", "", kDigest,
                 "docker.io/library/busybox@" + kDigest},
        GoodCase{"busybox:1.36@" + kDigest, "docker.io", "library/busybox", "1.36", kDigest,
                 "docker.io/library/busybox:1.36@" + kDigest},
        GoodCase{"host:5000/x@" + kDigest, "host:5000", "x", "", kDigest, "host:5000/x@" + kDigest},
        GoodCase{"a_b/c__d/e-f/g--h/i.j", "docker.io", "a_b/c__d/e-f/g--h/i.j", "latest", "",
                 "docker.io/a_b/c__d/e-f/g--h/i.j:latest"},
        GoodCase{"foo:Tag_With.Upper-1", "docker.io", "library/foo", "Tag_With.Upper-1", "",
                 "docker.io/library/foo:Tag_With.Upper-1"},
        GoodCase{"foo:_tag", "docker.io", "library/foo", "_tag", "", "docker.io/library/foo:_tag"},
        GoodCase{"foo:" + std::string(128, 'a'), "docker.io", "library/foo", std::string(128, 'a'),
                 "", "docker.io/library/foo:" + std::string(128, 'a')},
        // A truncated id is a name with a tag, as in Docker.
        GoodCase{"sha256:abc", "docker.io", "library/sha256", "abc", "",
                 "docker.io/library/sha256:abc"},
        GoodCase{"localhost:5000", "docker.io", "library/localhost", "5000", "",
                 "docker.io/library/localhost:5000"},
        GoodCase{"a-b.c/d", "a-b.c", "d", "latest", "", "a-b.c/d:latest"}));

struct BadCase {
  std::string input;
  std::string want_in_message;
};

class ReferenceBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ReferenceBadTest, IsInvalidArgumentNamingTheReference) {
  const BadCase& c = GetParam();
  auto ref = parseReference(c.input);
  ASSERT_FALSE(ref.ok()) << c.input << " parsed as " << ref->str();
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument) << ref.status();
  EXPECT_NE(ref.status().message().find("invalid image reference \"" + c.input + "\""),
            absl::string_view::npos)
      << ref.status();
  EXPECT_NE(ref.status().message().find(c.want_in_message), absl::string_view::npos)
      << ref.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReferenceBadTest,
    ::testing::Values(
        BadCase{"", "empty"}, BadCase{"UPPER/case", "lowercase"}, BadCase{"Busybox", "lowercase"},
        BadCase{"docker.io/Library/busybox", "lowercase"}, BadCase{kHex, "image id"},
        BadCase{kDigest, "image id"}, BadCase{"busybox@sha256:abc", "invalid digest"},
        BadCase{"busybox@md5:" + kHex.substr(0, 32), "invalid digest"},
        BadCase{"busybox@", "invalid digest"}, BadCase{"@" + kDigest, "empty repository name"},
        BadCase{"busybox:", "invalid tag"}, BadCase{"busybox:-x", "invalid tag"},
        BadCase{"busybox:.x", "invalid tag"}, BadCase{"busybox:a/b", "invalid domain"},
        BadCase{"busybox:" + std::string(129, 'a'), "invalid tag"},
        BadCase{"busy box", "path component"}, BadCase{"busybox/", "path component"},
        BadCase{"/busybox", "path component"}, BadCase{"a//b", "path component"},
        BadCase{"-foo", "path component"}, BadCase{"foo-", "path component"},
        BadCase{"foo.", "path component"}, BadCase{"foo..bar", "path component"},
        BadCase{"foo___bar", "path component"}, BadCase{"foo_-bar", "path component"},
        BadCase{"host.io/", "empty repository path"}, BadCase{"-host.io/foo", "invalid domain"},
        BadCase{"host-.io/foo", "invalid domain"}, BadCase{"host..io/foo", "invalid domain"},
        BadCase{"host:port/foo", "invalid domain"}, BadCase{"host:123456/foo", "invalid domain"},
        BadCase{"[::1/foo", "invalid domain"}, BadCase{"[zz]:5000/foo", "invalid domain"},
        BadCase{"host_name.io/foo", "invalid domain"},
        BadCase{"a@" + kDigest + "@" + kDigest, "invalid digest"},
        BadCase{"docker.io/" + std::string(250, 'a'), "more than 255"}));

TEST(ReferenceTest, LengthLimitCountsTheNormalisedName) {
  // docker.io/library/ + 237 = 255 characters: the limit itself is fine.
  EXPECT_TRUE(parseReference(std::string(237, 'a')).ok());
  EXPECT_FALSE(parseReference(std::string(238, 'a')).ok());
}

TEST(ReferenceTest, Helpers) {
  auto ref = parseReference("127.0.0.1:5000/berth-test/busybox:1.0@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->repository(), "127.0.0.1:5000/berth-test/busybox");
  EXPECT_EQ(ref->withTag(), "127.0.0.1:5000/berth-test/busybox:1.0");
  EXPECT_EQ(ref->withDigest(kDigest), "127.0.0.1:5000/berth-test/busybox@" + kDigest);

  auto byDigest = parseReference("busybox@" + kDigest);
  ASSERT_TRUE(byDigest.ok()) << byDigest.status();
  EXPECT_EQ(byDigest->withTag(), "");
  EXPECT_EQ(byDigest->withDigest(kDigest), "docker.io/library/busybox@" + kDigest);
}

}  // namespace
}  // namespace berth::image
