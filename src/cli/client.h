// berthctl's connection to a CRI endpoint and its global options.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "runtime/v1/api.h"

namespace berth::cli {

inline constexpr const char* kDefaultEndpoint = "unix:///run/berth/berth.sock";

struct GlobalOptions {
  std::string endpoint = kDefaultEndpoint;  // also BERTH_RUNTIME_ENDPOINT
  int timeout_seconds = 10;
  std::string output = "table";
};

// Normalises an endpoint: a bare path or unix:// URL becomes a gRPC unix target.
std::string grpcTarget(const std::string& endpoint);

class Client {
 public:
  explicit Client(const GlobalOptions& options);

  runtime::v1::RuntimeService::Stub& runtime() { return *runtime_; }
  runtime::v1::ImageService::Stub& image() { return *image_; }

  // A context with the configured deadline.
  std::unique_ptr<grpc::ClientContext> context() const;

 private:
  std::chrono::seconds timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> image_;
};

// "<rpc>: <code>: <message>" for a failed call, suitable for printing.
std::string describeFailure(const std::string& rpc, const grpc::Status& status);

// Prints describeFailure() to stderr; returns 1, the exit code of a failed verb.
int reportFailure(const std::string& rpc, const grpc::Status& status);

}  // namespace berth::cli
