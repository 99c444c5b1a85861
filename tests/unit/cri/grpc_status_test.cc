// The mapping to gRPC statuses at the service edge.
#include "cri/grpc_status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/status.h"

namespace berth::cri {
namespace {

TEST(GrpcStatusTest, CodesCarryOverAndUnknownBecomesInternal) {
  EXPECT_TRUE(toGrpcStatus(absl::OkStatus()).ok());
  grpc::Status nf = toGrpcStatus(absl::NotFoundError("pod sandbox \"x\" not found"));
  EXPECT_EQ(nf.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(nf.error_message(), "pod sandbox \"x\" not found");
  EXPECT_EQ(toGrpcStatus(absl::UnknownError("?")).error_code(), grpc::StatusCode::INTERNAL);
}

// An errno met on the way is no statement about the object the client named: EBUSY from an
// unmount must not tell kubelet the runtime is down (UNAVAILABLE), ENOENT of a file of berth's
// is no missing container. It reaches the client as INTERNAL with the errno, unless the code
// said it describes the client's object.
TEST(GrpcStatusTest, AnErrnoIsInternalUnlessItIsAboutTheNamedObject) {
  absl::Status busy = annotate(errnoStatus(EBUSY, "unmount /x/rootfs"), "remove container c1");
  EXPECT_TRUE(absl::IsUnavailable(busy)) << "inside berth the class still drives decisions";
  grpc::Status g = toGrpcStatus(busy);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(g.error_message(),
            "remove container c1: unmount /x/rootfs: Device or resource busy (errno 16)");
  grpc::Status missing = toGrpcStatus(aboutObject(errnoStatus(ENOENT, "mount host_path /data")));
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_message(), "mount host_path /data: No such file or directory");
  // Not from an errno: as it is.
  EXPECT_EQ(toGrpcStatus(absl::UnavailableError("shim of pod p is not reachable")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(toGrpcStatus(errnoStatus(EIO, "read x")).error_message(), "read x: Input/output error");
}

// A message echoing a megabyte of client input would make the client drop the call with
// RESOURCE_EXHAUSTED instead of the real code: it is cut, never inside a UTF-8 character.
TEST(GrpcStatusTest, LongMessagesAreCutAtACharacterBoundary) {
  std::string ref(1 << 20, 'a');
  const std::string message = "image \"" + ref + "\" is bad";
  grpc::Status st = toGrpcStatus(absl::InvalidArgumentError(message));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LE(st.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_NE(st.error_message().find(std::to_string(message.size()) + " bytes"), std::string::npos)
      << st.error_message();
  std::string utf8;
  while (utf8.size() < 10000) utf8 += "\xc3\xa9";  // é
  std::string cut = wireMessage(utf8);
  size_t body = cut.find(" ... (cut");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(body % 2, 0u) << "cut inside a two-byte character";
  EXPECT_EQ(wireMessage("short"), "short");
}

}  // namespace
}  // namespace berth::cri
