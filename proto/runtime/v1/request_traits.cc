// Parsing CRI requests with errors a client can act on. Protobuf reports which string field is
// not UTF-8 only through its log handler: the handler installed here hands the field's name to
// the parse running on the same thread, and passes every other message on.
#include "runtime/v1/request_traits.h"

#include <google/protobuf/message_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <string_view>

namespace berth::cri_proto {
namespace {

// Set while this thread parses a request: where the offending field's name goes.
thread_local std::string* t_bad_utf8_field = nullptr;
google::protobuf::LogHandler* g_previous_handler = nullptr;

void onProtobufLog(google::protobuf::LogLevel level, const char* filename, int line,
                   const std::string& message) {
  // Protobuf 3.21: "String field 'runtime.v1.PodSandboxMetadata.name' contains invalid UTF-8
  // data when parsing a protocol buffer. ..."
  constexpr std::string_view kPrefix = "String field '";
  if (t_bad_utf8_field != nullptr && message.rfind(kPrefix, 0) == 0 &&
      message.find("when parsing") != std::string::npos) {
    size_t end = message.find('\'', kPrefix.size());
    if (end != std::string::npos && t_bad_utf8_field->empty()) {
      *t_bad_utf8_field = message.substr(kPrefix.size(), end - kPrefix.size());
    }
    return;  // reported to the client instead
  }
  if (g_previous_handler != nullptr) g_previous_handler(level, filename, line, message);
}

// SetLogHandler is not thread-safe: install it during static initialization, before main()
// and before any thread can log.
[[maybe_unused]] const bool g_handler_installed = [] {
  g_previous_handler = google::protobuf::SetLogHandler(&onProtobufLog);
  return true;
}();

bool isRequestType(const std::string& full_name) {
  static const std::set<std::string, std::less<>> kTypes(std::begin(kRequestTypeNames),
                                                         std::end(kRequestTypeNames));
  return kTypes.contains(full_name);
}

class CaptureBadUtf8Field {
 public:
  explicit CaptureBadUtf8Field(std::string* into) : saved_(t_bad_utf8_field) {
    t_bad_utf8_field = into;
  }
  ~CaptureBadUtf8Field() { t_bad_utf8_field = saved_; }
  CaptureBadUtf8Field(const CaptureBadUtf8Field&) = delete;
  CaptureBadUtf8Field& operator=(const CaptureBadUtf8Field&) = delete;

 private:
  std::string* saved_;
};

}  // namespace

grpc::Status serialize(const google::protobuf::MessageLite& msg, grpc::ByteBuffer* buffer,
                       bool* own_buffer) {
  return grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::MessageLite>(msg, buffer,
                                                                                        own_buffer);
}

grpc::Status deserialize(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* msg) {
  const std::string type = msg->GetTypeName();
  if (!isRequestType(type)) {
    return grpc::GenericDeserialize<grpc::ProtoBufferReader, google::protobuf::MessageLite>(buffer,
                                                                                            msg);
  }
  const std::string what = "malformed " + type;
  if (buffer == nullptr || !buffer->Valid()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, what + ": the call carries no request message"};
  }
  std::string bad_field;
  bool parsed = false;
  {
    grpc::ProtoBufferReader reader(buffer);
    if (!reader.status().ok()) return reader.status();  // not the client's doing
    CaptureBadUtf8Field capture(&bad_field);
    parsed = msg->ParseFromZeroCopyStream(&reader);
  }
  buffer->Clear();
  if (parsed) return grpc::Status::OK;
  if (!bad_field.empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            what + ": field " + bad_field + " is not valid UTF-8"};
  }
  return {grpc::StatusCode::INVALID_ARGUMENT, what + ": not a valid protobuf message"};
}

}  // namespace berth::cri_proto
