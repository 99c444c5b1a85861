// Per-RPC metrics recorded by the instrumented wrapper.
#include "cri/rpc_metrics.h"

#include <gtest/gtest.h>

#include "common/logging.h"
#include "cri/instrumented.h"
#include "runtime/v1/api.h"

namespace berth::cri {
namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(RpcMetricsTest, CodeNamesAsPrometheusExportersSpellThem) {
  EXPECT_EQ(grpcCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(grpcCodeName(grpc::StatusCode::NOT_FOUND), "NotFound");
  EXPECT_EQ(grpcCodeName(grpc::StatusCode::UNIMPLEMENTED), "Unimplemented");
  EXPECT_EQ(grpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "Unauthenticated");
  EXPECT_EQ(grpcCodeName(static_cast<grpc::StatusCode>(99)), "Unknown");
}

TEST(RpcMetricsTest, InstrumentedCallsAreCountedTimedAndFailuresByCode) {
  metrics::Registry registry;
  RpcMetrics rpc(registry);
  Instrumented instr(logging::get("cri-test"), &rpc);
  runtime::v1::VersionRequest req;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(instr.run("Version", req, [] { return absl::OkStatus(); }).ok());
  }
  grpc::Status missing = instr.run("ContainerStatus", req,
                                   [] { return absl::NotFoundError("container \"x\" not found"); });
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  // Unknown reaches clients (and the metrics) as Internal.
  instr.run("ContainerStatus", req, [] { return absl::UnknownError("?"); });
  instr.run("ContainerStatus", req, []() -> absl::Status { throw std::runtime_error("x"); });

  std::string text = registry.render();
  EXPECT_TRUE(has(text, "berth_cri_requests_total{method=\"Version\"} 3")) << text;
  EXPECT_TRUE(has(text, "berth_cri_requests_total{method=\"ContainerStatus\"} 3")) << text;
  EXPECT_TRUE(
      has(text, "berth_cri_request_errors_total{method=\"ContainerStatus\",code=\"NotFound\"} 1"))
      << text;
  EXPECT_TRUE(
      has(text, "berth_cri_request_errors_total{method=\"ContainerStatus\",code=\"Internal\"} 2"))
      << text;
  EXPECT_EQ(text.find("berth_cri_request_errors_total{method=\"Version\""), std::string::npos);
  EXPECT_TRUE(has(text, "berth_cri_request_duration_seconds_count{method=\"Version\"} 3")) << text;
  EXPECT_TRUE(
      has(text, "berth_cri_request_duration_seconds_bucket{method=\"Version\",le=\"+Inf\"} 3"))
      << text;
  EXPECT_TRUE(has(text, "# TYPE berth_cri_request_duration_seconds histogram")) << text;
}

TEST(RpcMetricsTest, WithoutMetricsTheWrapperStillWorks) {
  Instrumented instr(logging::get("cri-test"));
  runtime::v1::VersionRequest req;
  EXPECT_EQ(instr.run("Version", req, [] { return absl::InvalidArgumentError("x"); }).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace berth::cri
