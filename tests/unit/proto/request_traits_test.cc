// A CRI request that does not parse is INVALID_ARGUMENT naming the message and the field.
#include "runtime/v1/request_traits.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "runtime/v1/api.h"

namespace berth::cri_proto {
namespace {

namespace v1 = runtime::v1;

grpc::ByteBuffer bufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// Through the traits of the message's own type (streaming handlers) and of MessageLite (unary
// handlers and stubs): both must answer the same.
template <typename Message>
grpc::Status parse(const std::string& bytes, Message* out) {
  grpc::ByteBuffer buffer = bufferOf(bytes);
  grpc::Status own = grpc::SerializationTraits<Message>::Deserialize(&buffer, out);
  Message again;
  grpc::ByteBuffer buffer2 = bufferOf(bytes);
  grpc::Status lite =
      grpc::SerializationTraits<grpc::protobuf::MessageLite>::Deserialize(&buffer2, &again);
  EXPECT_EQ(own.error_code(), lite.error_code());
  EXPECT_EQ(own.error_message(), lite.error_message());
  return own;
}

// RunPodSandboxRequest{config: {metadata: {name: <name>}}}, encoded by hand.
std::string runPodSandboxWithName(const std::string& name) {
  std::string metadata = "\x0a" + std::string(1, static_cast<char>(name.size())) + name;
  std::string config = "\x0a" + std::string(1, static_cast<char>(metadata.size())) + metadata;
  return "\x0a" + std::string(1, static_cast<char>(config.size())) + config;
}

TEST(RequestTraitsTest, EveryRequestTypeOfBothServicesIsCovered) {
  std::set<std::string> covered(std::begin(kRequestTypeNames), std::end(kRequestTypeNames));
  std::set<std::string> used;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* service : {"runtime.v1.RuntimeService", "runtime.v1.ImageService"}) {
    const auto* desc = pool->FindServiceByName(service);
    ASSERT_NE(desc, nullptr) << service;
    for (int i = 0; i < desc->method_count(); ++i) {
      used.insert(desc->method(i)->input_type()->full_name());
    }
  }
  EXPECT_EQ(covered, used);
}

TEST(RequestTraitsTest, WellFormedRequestsParse) {
  v1::RunPodSandboxRequest req;
  ASSERT_TRUE(parse(runPodSandboxWithName("web-0"), &req).ok());
  EXPECT_EQ(req.config().metadata().name(), "web-0");
  // Serialization is gRPC's own.
  grpc::ByteBuffer out;
  bool own = false;
  ASSERT_TRUE(grpc::SerializationTraits<v1::RunPodSandboxRequest>::Serialize(req, &out, &own).ok());
  v1::RunPodSandboxRequest back;
  ASSERT_TRUE(grpc::SerializationTraits<v1::RunPodSandboxRequest>::Deserialize(&out, &back).ok());
  EXPECT_EQ(back.config().metadata().name(), "web-0");
}

TEST(RequestTraitsTest, InvalidUtf8NamesTheMessageAndTheField) {
  v1::RunPodSandboxRequest req;
  grpc::Status st = parse(runPodSandboxWithName("bad\xff\xfe"), &req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "malformed runtime.v1.RunPodSandboxRequest: field runtime.v1.PodSandboxMetadata.name "
            "is not valid UTF-8");

  // A map key: PodSandboxConfig.labels {"\xc0": "v"}.
  v1::RunPodSandboxRequest labelled;
  std::string entry = std::string("\x0a\x01\xc0\x12\x01v", 6);
  std::string config = "\x32" + std::string(1, static_cast<char>(entry.size())) + entry;
  std::string bytes = "\x0a" + std::string(1, static_cast<char>(config.size())) + config;
  st = parse(bytes, &labelled);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("runtime.v1.PodSandboxConfig.LabelsEntry.key"),
            std::string::npos)
      << st.error_message();

  // The next parse on this thread does not inherit the field of the last one.
  v1::ImageStatusRequest image;
  st = parse(std::string("\x0a\x05\x0a\x10xyz", 7), &image);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "malformed runtime.v1.ImageStatusRequest: not a valid protobuf message");
}

TEST(RequestTraitsTest, ResponsesKeepGrpcsBehaviour) {
  // VersionResponse{version: "\xff"}: a client reading a bad response gets gRPC's INTERNAL.
  v1::VersionResponse resp;
  grpc::Status st = parse(std::string("\x0a\x01\xff", 3), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(parse(std::string("\x0a\x01v", 3), &resp).error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.version(), "v");
}

TEST(RequestTraitsTest, GarbageAndMissingMessagesAreInvalidArgument) {
  v1::VersionRequest req;
  grpc::Status st = parse(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11), &req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "malformed runtime.v1.VersionRequest: not a valid protobuf message");

  grpc::ByteBuffer empty;  // a call that carries no message at all
  st = grpc::SerializationTraits<grpc::protobuf::MessageLite>::Deserialize(&empty, &req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("no request message"), std::string::npos);
}

}  // namespace
}  // namespace berth::cri_proto
