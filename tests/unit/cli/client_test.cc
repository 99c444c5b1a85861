// Endpoint forms berthctl accepts (the same ones crictl accepts).
#include "cli/client.h"

#include <gtest/gtest.h>

namespace berth::cli {
namespace {

TEST(ClientTest, EndpointForms) {
  EXPECT_EQ(grpcTarget("unix:///run/berth/berth.sock"), "unix:/run/berth/berth.sock");
  EXPECT_EQ(grpcTarget("/run/berth/berth.sock"), "unix:/run/berth/berth.sock");
  EXPECT_EQ(grpcTarget("unix:/x.sock"), "unix:/x.sock");
  EXPECT_EQ(grpcTarget("localhost:1234"), "localhost:1234");
}

TEST(ClientTest, FailureNamesRpcAndCode) {
  EXPECT_EQ(describeFailure("Version", grpc::Status(grpc::StatusCode::NOT_FOUND, "pod x")),
            "Version failed: NotFound: pod x");
}

}  // namespace
}  // namespace berth::cli
