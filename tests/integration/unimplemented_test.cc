// Every runtime.v1 RPC is served: the ones built answer, the rest say UNIMPLEMENTED and name
// themselves. Calls go through a generic stub so that no RPC can be forgotten.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <set>

#include "berthd_fixture.h"
#include "google/protobuf/descriptor.h"

namespace berth::testing {
namespace {

// Sends one empty request on `method` and returns the final status.
grpc::Status callRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareCall(&ctx, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](intptr_t expect) {
    if (!cq.Next(&tag, &ok)) return false;
    return reinterpret_cast<intptr_t>(tag) == expect && ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  if (step(1)) {
    grpc::ByteBuffer empty;
    grpc::Slice slice("", 0);
    empty = grpc::ByteBuffer(&slice, 1);
    call->Write(empty, reinterpret_cast<void*>(2));
    if (step(2)) {
      call->WritesDone(reinterpret_cast<void*>(3));
      step(3);
    }
  }
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(5));  // a reply must be read before Finish
  step(5);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  // Drain until the Finish tag arrives.
  while (cq.Next(&tag, &ok)) {
    if (reinterpret_cast<intptr_t>(tag) == 4) break;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST(UnimplementedTest, AllRpcsAnswerAndUnbuiltOnesSayUnimplemented) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::set<std::string> built = {"Version",         "Status",        "RuntimeConfig",
                                       "ListImages",      "ImageFsInfo",   "StreamImages",
                                       "ListPodSandbox",  "StreamPodSandboxes",
                                       "ListContainers",  "StreamContainers",
                                       "ListContainerStats", "ListPodSandboxStats",
                                       "StreamContainerStats", "StreamPodSandboxStats",
                                       "ListMetricDescriptors", "ListPodSandboxMetrics",
                                       "StreamPodSandboxMetrics", "UpdateRuntimeConfig"};
  // Streams that stay open until the client goes away (the call's deadline here).
  const std::set<std::string> open_streams = {"GetContainerEvents"};
  // Built, but an empty request is invalid for them.
  const std::set<std::string> need_args = {"PullImage",
                                           "RemoveImage",
                                           "ImageStatus",
                                           "RunPodSandbox",
                                           "StopPodSandbox",
                                           "RemovePodSandbox",
                                           "PodSandboxStatus",
                                           "UpdatePodSandboxResources",
                                           "CreateContainer",
                                           "StartContainer",
                                           "StopContainer",
                                           "RemoveContainer",
                                           "ContainerStatus",
                                           "UpdateContainerResources",
                                           "ReopenContainerLog",
                                           "ExecSync",
                                           "CheckpointContainer",
                                           "ContainerStats",
                                           "PodSandboxStats",
                                           "Exec",
                                           "Attach",
                                           "PortForward"};
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  int total = 0;
  for (const char* name : {"runtime.v1.RuntimeService", "runtime.v1.ImageService"}) {
    const auto* service = pool->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      ++total;
      std::string path = "/" + std::string(service->full_name()) + "/" + m->name();
      grpc::Status st = callRaw(d.channel(), path);
      if (open_streams.contains(m->name())) {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << path;
      } else if (built.contains(m->name())) {
        EXPECT_TRUE(st.ok()) << path << ": " << st.error_message();
      } else if (need_args.contains(m->name())) {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
      } else {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED) << path;
        EXPECT_NE(st.error_message().find(m->name()), std::string::npos)
            << path << ": " << st.error_message();
      }
    }
  }
  EXPECT_EQ(total, 41);
}

}  // namespace
}  // namespace berth::testing
