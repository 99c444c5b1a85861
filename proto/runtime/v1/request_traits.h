// How gRPC reads CRI requests: a request that does not parse is INVALID_ARGUMENT naming the
// message and, for a string that is not UTF-8, the field ("malformed
// runtime.v1.RunPodSandboxRequest: field runtime.v1.PodSandboxMetadata.name is not valid
// UTF-8") instead of gRPC's INTERNAL with an empty message. Responses keep gRPC's behaviour.
//
// gRPC 1.51's generated unary handlers and stubs go through SerializationTraits<MessageLite>,
// its streaming handlers through SerializationTraits<the request type>: both are fully
// specialized here. Every translation unit that uses one must see it first: this header is
// force-included when the generated code is compiled (proto/CMakeLists.txt) and included by
// api.h, the only way berth includes the generated headers.
#pragma once

#include <grpcpp/impl/serialization_traits.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace berth::cri_proto {

// gRPC's protobuf serialization, unchanged.
grpc::Status serialize(const google::protobuf::MessageLite& msg, grpc::ByteBuffer* buffer,
                       bool* own_buffer);
// Parses `buffer` into `msg`. When that fails for a CRI request: INVALID_ARGUMENT as described
// above; for any other message, gRPC's own INTERNAL.
grpc::Status deserialize(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* msg);

}  // namespace berth::cri_proto

// Every request message of the two services, one X(name) each.
// clang-format off
#define BERTH_CRI_REQUEST_TYPES(X)                                                           \
  X(VersionRequest) X(RunPodSandboxRequest) X(StopPodSandboxRequest)                        \
  X(RemovePodSandboxRequest) X(PodSandboxStatusRequest) X(ListPodSandboxRequest)            \
  X(CreateContainerRequest) X(StartContainerRequest) X(StopContainerRequest)                \
  X(RemoveContainerRequest) X(ListContainersRequest) X(ContainerStatusRequest)              \
  X(UpdateContainerResourcesRequest) X(ReopenContainerLogRequest) X(ExecSyncRequest)        \
  X(ExecRequest) X(AttachRequest) X(PortForwardRequest) X(ContainerStatsRequest)            \
  X(ListContainerStatsRequest) X(PodSandboxStatsRequest) X(ListPodSandboxStatsRequest)      \
  X(UpdateRuntimeConfigRequest) X(StatusRequest) X(CheckpointContainerRequest)              \
  X(GetEventsRequest) X(ListMetricDescriptorsRequest) X(ListPodSandboxMetricsRequest)       \
  X(RuntimeConfigRequest) X(UpdatePodSandboxResourcesRequest) X(StreamPodSandboxesRequest)  \
  X(StreamContainersRequest) X(StreamContainerStatsRequest) X(StreamPodSandboxStatsRequest) \
  X(StreamPodSandboxMetricsRequest) X(ListImagesRequest) X(ImageStatusRequest)              \
  X(PullImageRequest) X(RemoveImageRequest) X(ImageFsInfoRequest) X(StreamImagesRequest)
// clang-format on

#define BERTH_CRI_DECLARE_TYPE(Type) class Type;
#define BERTH_CRI_TYPE_NAME(Type) "runtime.v1." #Type,
namespace runtime::v1 {
BERTH_CRI_REQUEST_TYPES(BERTH_CRI_DECLARE_TYPE)
}  // namespace runtime::v1
#undef BERTH_CRI_DECLARE_TYPE

namespace berth::cri_proto {
// The full names of the types above (a test checks them against the services).
inline constexpr const char* kRequestTypeNames[] = {BERTH_CRI_REQUEST_TYPES(BERTH_CRI_TYPE_NAME)};
}  // namespace berth::cri_proto
#undef BERTH_CRI_TYPE_NAME

#define BERTH_CRI_SERIALIZATION_TRAITS(Type)                                                \
  template <>                                                                               \
  class SerializationTraits<Type, void> {                                                   \
   public:                                                                                  \
    static Status Serialize(const ::google::protobuf::MessageLite& msg, ByteBuffer* buffer, \
                            bool* own_buffer) {                                             \
      return ::berth::cri_proto::serialize(msg, buffer, own_buffer);                        \
    }                                                                                       \
    static Status Deserialize(ByteBuffer* buffer, ::google::protobuf::MessageLite* msg) {   \
      return ::berth::cri_proto::deserialize(buffer, msg);                                  \
    }                                                                                       \
  };
#define BERTH_CRI_REQUEST_TRAITS(Type) BERTH_CRI_SERIALIZATION_TRAITS(::runtime::v1::Type)
namespace grpc {
BERTH_CRI_SERIALIZATION_TRAITS(::google::protobuf::MessageLite)
BERTH_CRI_REQUEST_TYPES(BERTH_CRI_REQUEST_TRAITS)
}  // namespace grpc
#undef BERTH_CRI_SERIALIZATION_TRAITS
#undef BERTH_CRI_REQUEST_TRAITS
