// errno mapping and context annotation.
#include "common/status.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace berth {
namespace {

struct ErrnoCase {
  int err;
  absl::StatusCode code;
};

class ErrnoStatusTest : public ::testing::TestWithParam<ErrnoCase> {};

TEST_P(ErrnoStatusTest, MapsToCodeAndKeepsContext) {
  absl::Status st = errnoStatus(GetParam().err, "open /x");
  EXPECT_EQ(st.code(), GetParam().code);
  EXPECT_TRUE(absl::StartsWith(st.message(), "open /x: ")) << st;
}

INSTANTIATE_TEST_SUITE_P(Codes, ErrnoStatusTest,
                         ::testing::Values(ErrnoCase{ENOENT, absl::StatusCode::kNotFound},
                                           ErrnoCase{EEXIST, absl::StatusCode::kAlreadyExists},
                                           ErrnoCase{EACCES, absl::StatusCode::kPermissionDenied},
                                           ErrnoCase{EPERM, absl::StatusCode::kPermissionDenied},
                                           ErrnoCase{EINVAL, absl::StatusCode::kInvalidArgument},
                                           ErrnoCase{EBUSY, absl::StatusCode::kUnavailable},
                                           ErrnoCase{EIO, absl::StatusCode::kInternal}));

TEST(ErrnoPayloadTest, AnErrnoStatusCarriesItsErrnoThroughAnnotate) {
  absl::Status st = annotate(errnoStatus(EBUSY, "unmount /x"), "remove container c");
  EXPECT_EQ(errnoOf(st), EBUSY);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(errnoOf(aboutObject(st)), 0);
  EXPECT_EQ(aboutObject(st).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(errnoOf(absl::NotFoundError("x")), 0);
}

TEST(AnnotateTest, PrefixesMessageAndKeepsCode) {
  absl::Status st = annotate(absl::NotFoundError("image x"), "pull");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "pull: image x");
  EXPECT_TRUE(annotate(absl::OkStatus(), "pull").ok());
}

absl::StatusOr<int> half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status quarter(int x, int* out) {
  BERTH_ASSIGN_OR_RETURN(int h, half(x));
  BERTH_ASSIGN_OR_RETURN(*out, half(h));
  return absl::OkStatus();
}

TEST(MacrosTest, AssignOrReturnPropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth
