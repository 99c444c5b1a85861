// runtime.v1.RuntimeService on gRPC: a thin adapter that sends every RPC through the
// instrumented wrapper to the handler that owns it. RPCs not built yet answer UNIMPLEMENTED.
#pragma once

#include "cri/container_handlers.h"
#include "cri/event_hub.h"
#include "cri/stats_handlers.h"
#include "cri/stream_handlers.h"
#include "cri/image_handlers.h"
#include "cri/instrumented.h"
#include "cri/pod_handlers.h"
#include "cri/runtime_info.h"
#include "runtime/v1/api.h"

namespace berth::cri {

// The handlers the service dispatches to; each is owned by the daemon and outlives the server.
struct RuntimeHandlers {
  const RuntimeInfo* info = nullptr;
  PodHandlers* pods = nullptr;
  ContainerHandlers* containers = nullptr;
  EventHub* events = nullptr;
  StatsHandlers* stats = nullptr;
  StreamHandlers* streams = nullptr;
};

#define BERTH_CRI_UNARY(M)                                                      \
  grpc::Status M(grpc::ServerContext* ctx, const v1::M##Request* req, v1::M##Response* resp) \
      override
#define BERTH_CRI_STREAM(M, Req, Resp)                                                   \
  grpc::Status M(grpc::ServerContext* ctx, const v1::Req* req, grpc::ServerWriter<v1::Resp>* w) \
      override

// The lists kubelet asks for every second are answered with bytes made beforehand (raw
// callback methods: no response message is built, copied or serialised per call).
using RuntimeServiceBase = v1::RuntimeService::WithRawCallbackMethod_ListPodSandbox<
    v1::RuntimeService::WithRawCallbackMethod_ListContainers<v1::RuntimeService::Service>>;

// Called concurrently by gRPC's server threads.
class RuntimeServiceImpl final : public RuntimeServiceBase {
 public:
  RuntimeServiceImpl(const Instrumented& instrumented, RuntimeHandlers handlers)
      : instr_(instrumented), h_(handlers) {}

  BERTH_CRI_UNARY(Version);
  BERTH_CRI_UNARY(RunPodSandbox);
  BERTH_CRI_UNARY(StopPodSandbox);
  BERTH_CRI_UNARY(RemovePodSandbox);
  BERTH_CRI_UNARY(PodSandboxStatus);
  grpc::ServerUnaryReactor* ListPodSandbox(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* req,
                                           grpc::ByteBuffer* resp) override;
  BERTH_CRI_UNARY(CreateContainer);
  BERTH_CRI_UNARY(StartContainer);
  BERTH_CRI_UNARY(StopContainer);
  BERTH_CRI_UNARY(RemoveContainer);
  grpc::ServerUnaryReactor* ListContainers(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* req,
                                           grpc::ByteBuffer* resp) override;
  BERTH_CRI_UNARY(ContainerStatus);
  BERTH_CRI_UNARY(UpdateContainerResources);
  BERTH_CRI_UNARY(ReopenContainerLog);
  BERTH_CRI_UNARY(ExecSync);
  BERTH_CRI_UNARY(Exec);
  BERTH_CRI_UNARY(Attach);
  BERTH_CRI_UNARY(PortForward);
  BERTH_CRI_UNARY(ContainerStats);
  BERTH_CRI_UNARY(ListContainerStats);
  BERTH_CRI_UNARY(PodSandboxStats);
  BERTH_CRI_UNARY(ListPodSandboxStats);
  BERTH_CRI_UNARY(UpdateRuntimeConfig);
  BERTH_CRI_UNARY(Status);
  BERTH_CRI_UNARY(CheckpointContainer);
  BERTH_CRI_STREAM(GetContainerEvents, GetEventsRequest, ContainerEventResponse);
  BERTH_CRI_UNARY(ListMetricDescriptors);
  BERTH_CRI_UNARY(ListPodSandboxMetrics);
  BERTH_CRI_UNARY(RuntimeConfig);
  BERTH_CRI_UNARY(UpdatePodSandboxResources);
  BERTH_CRI_STREAM(StreamPodSandboxes, StreamPodSandboxesRequest, StreamPodSandboxesResponse);
  BERTH_CRI_STREAM(StreamContainers, StreamContainersRequest, StreamContainersResponse);
  BERTH_CRI_STREAM(StreamContainerStats, StreamContainerStatsRequest,
                   StreamContainerStatsResponse);
  BERTH_CRI_STREAM(StreamPodSandboxStats, StreamPodSandboxStatsRequest,
                   StreamPodSandboxStatsResponse);
  BERTH_CRI_STREAM(StreamPodSandboxMetrics, StreamPodSandboxMetricsRequest,
                   StreamPodSandboxMetricsResponse);

 private:
  const Instrumented& instr_;
  RuntimeHandlers h_;
};

// Called concurrently by gRPC's server threads.
class ImageServiceImpl final : public v1::ImageService::Service {
 public:
  ImageServiceImpl(const Instrumented& instrumented, ImageHandlers& handlers)
      : instr_(instrumented), h_(handlers) {}

  BERTH_CRI_UNARY(ListImages);
  BERTH_CRI_UNARY(ImageStatus);
  BERTH_CRI_UNARY(PullImage);
  BERTH_CRI_UNARY(RemoveImage);
  BERTH_CRI_UNARY(ImageFsInfo);
  BERTH_CRI_STREAM(StreamImages, StreamImagesRequest, StreamImagesResponse);

 private:
  const Instrumented& instr_;
  ImageHandlers& h_;
};

#undef BERTH_CRI_UNARY
#undef BERTH_CRI_STREAM

}  // namespace berth::cri
