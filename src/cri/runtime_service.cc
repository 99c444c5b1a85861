// RPC → handler dispatch for RuntimeService and ImageService.
#include "cri/runtime_service.h"

#include "absl/time/time.h"

namespace berth::cri {

// An RPC whose handler is not built yet: it still goes through the wrapper (logged, counted).
#define BERTH_CRI_NOT_YET(Svc, M)                                                        \
  grpc::Status Svc::M(grpc::ServerContext*, const v1::M##Request* req, v1::M##Response*) { \
    return instr_.run(#M, *req, [] { return Instrumented::unimplemented(#M); });          \
  }

// An RPC served by handler method `fn` of `h_`.
#define BERTH_CRI_UNARY_TO(Svc, M, fn)                                                   \
  grpc::Status Svc::M(grpc::ServerContext*, const v1::M##Request* req, v1::M##Response* resp) { \
    return instr_.run(#M, *req, [&] { return h_.fn(*req, resp); });                      \
  }

#define BERTH_CRI_POD(M, fn)                                                               \
  grpc::Status RuntimeServiceImpl::M(grpc::ServerContext*, const v1::M##Request* req,      \
                                     v1::M##Response* resp) {                              \
    return instr_.run(#M, *req, [&] { return h_.pods->fn(*req, resp); });                 \
  }

BERTH_CRI_POD(RunPodSandbox, run)
BERTH_CRI_POD(StopPodSandbox, stop)
BERTH_CRI_POD(RemovePodSandbox, remove)
BERTH_CRI_POD(PodSandboxStatus, status)
BERTH_CRI_POD(UpdatePodSandboxResources, updateResources)

#define BERTH_CRI_CONTAINER(M, fn)                                                         \
  grpc::Status RuntimeServiceImpl::M(grpc::ServerContext*, const v1::M##Request* req,      \
                                     v1::M##Response* resp) {                              \
    return instr_.run(#M, *req, [&] { return h_.containers->fn(*req, resp); });           \
  }

BERTH_CRI_CONTAINER(CreateContainer, create)
BERTH_CRI_CONTAINER(StartContainer, start)
BERTH_CRI_CONTAINER(StopContainer, stop)
BERTH_CRI_CONTAINER(RemoveContainer, remove)
BERTH_CRI_CONTAINER(ContainerStatus, status)
BERTH_CRI_CONTAINER(UpdateContainerResources, updateResources)
BERTH_CRI_CONTAINER(ReopenContainerLog, reopenLog)
BERTH_CRI_CONTAINER(ExecSync, execSync)
BERTH_CRI_CONTAINER(CheckpointContainer, checkpoint)

namespace {

// A raw unary call: the request parsed from `req`, the handler's bytes as the response.
template <typename Req, typename Fn>
grpc::ServerUnaryReactor* rawUnary(const Instrumented& instr, absl::string_view method,
                                   grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                   grpc::ByteBuffer* resp, Fn&& fn) {
  Req request;
  grpc::ByteBuffer in(*req);  // shares the slices; Deserialize consumes its buffer
  const bool parsed = grpc::SerializationTraits<Req>::Deserialize(&in, &request).ok();
  std::string out;
  grpc::Status st = instr.run(method, request, [&]() -> absl::Status {
    if (!parsed) return absl::InvalidArgumentError(absl::StrCat(method, ": malformed request"));
    return fn(request, &out);
  });
  if (st.ok()) {
    grpc::Slice slice(out);
    *resp = grpc::ByteBuffer(&slice, 1);
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(st);
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* RuntimeServiceImpl::ListPodSandbox(grpc::CallbackServerContext* ctx,
                                                             const grpc::ByteBuffer* req,
                                                             grpc::ByteBuffer* resp) {
  return rawUnary<v1::ListPodSandboxRequest>(
      instr_, "ListPodSandbox", ctx, req, resp,
      [this](const v1::ListPodSandboxRequest& r, std::string* out) {
        return h_.pods->list(r, out);
      });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ListContainers(grpc::CallbackServerContext* ctx,
                                                             const grpc::ByteBuffer* req,
                                                             grpc::ByteBuffer* resp) {
  return rawUnary<v1::ListContainersRequest>(
      instr_, "ListContainers", ctx, req, resp,
      [this](const v1::ListContainersRequest& r, std::string* out) {
        return h_.containers->list(r, out);
      });
}

grpc::Status RuntimeServiceImpl::StreamContainers(
    grpc::ServerContext*, const v1::StreamContainersRequest* req,
    grpc::ServerWriter<v1::StreamContainersResponse>* w) {
  return instr_.run("StreamContainers", *req, [&] { return h_.containers->stream(*req, w); });
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxes(
    grpc::ServerContext*, const v1::StreamPodSandboxesRequest* req,
    grpc::ServerWriter<v1::StreamPodSandboxesResponse>* w) {
  return instr_.run("StreamPodSandboxes", *req, [&] { return h_.pods->stream(*req, w); });
}

grpc::Status RuntimeServiceImpl::Version(grpc::ServerContext*, const v1::VersionRequest* req,
                                         v1::VersionResponse* resp) {
  return instr_.run("Version", *req, [&] { return h_.info->version(*req, resp); });
}

grpc::Status RuntimeServiceImpl::Status(grpc::ServerContext*, const v1::StatusRequest* req,
                                        v1::StatusResponse* resp) {
  return instr_.run("Status", *req, [&] { return h_.info->status(*req, resp); });
}

grpc::Status RuntimeServiceImpl::RuntimeConfig(grpc::ServerContext*,
                                               const v1::RuntimeConfigRequest* req,
                                               v1::RuntimeConfigResponse* resp) {
  return instr_.run("RuntimeConfig", *req, [&] { return h_.info->runtimeConfig(*req, resp); });
}

#define BERTH_CRI_STREAMING(M, fn)                                                         \
  grpc::Status RuntimeServiceImpl::M(grpc::ServerContext*, const v1::M##Request* req,      \
                                     v1::M##Response* resp) {                              \
    return instr_.run(#M, *req, [&] { return h_.streams->fn(*req, resp); });              \
  }

BERTH_CRI_STREAMING(Exec, exec)
BERTH_CRI_STREAMING(Attach, attach)
BERTH_CRI_STREAMING(PortForward, portForward)
grpc::Status RuntimeServiceImpl::UpdateRuntimeConfig(grpc::ServerContext*,
                                                     const v1::UpdateRuntimeConfigRequest* req,
                                                     v1::UpdateRuntimeConfigResponse* resp) {
  return instr_.run("UpdateRuntimeConfig", *req,
                    [&] { return h_.info->updateRuntimeConfig(*req, resp); });
}
grpc::Status RuntimeServiceImpl::GetContainerEvents(
    grpc::ServerContext* ctx, const v1::GetEventsRequest* req,
    grpc::ServerWriter<v1::ContainerEventResponse>* w) {
  return instr_.run("GetContainerEvents", *req, [&]() -> absl::Status {
    auto sub = h_.events->subscribe();
    struct Unsubscribe {
      EventHub* hub;
      std::shared_ptr<EventHub::Subscription> sub;
      ~Unsubscribe() { hub->unsubscribe(sub); }
    } unsubscribe{h_.events, sub};
    v1::ContainerEventResponse event;
    // Wakes up now and then to notice a client that went away while nothing happened.
    while (!ctx->IsCancelled()) {
      switch (sub->next(&event, absl::Milliseconds(250))) {
        case EventHub::Subscription::Next::kEvent:
          if (!w->Write(event)) return absl::CancelledError("GetContainerEvents: client went away");
          break;
        case EventHub::Subscription::Next::kTimeout:
          break;
        case EventHub::Subscription::Next::kClosed:
          if (sub->dropped()) {
            return absl::ResourceExhaustedError(
                "GetContainerEvents: this subscriber fell too far behind and was dropped; "
                "subscribe again");
          }
          return absl::OkStatus();  // berthd is shutting down
      }
    }
    return absl::CancelledError("GetContainerEvents: client went away");
  });
}
#define BERTH_CRI_STATS(M, fn)                                                             \
  grpc::Status RuntimeServiceImpl::M(grpc::ServerContext*, const v1::M##Request* req,      \
                                     v1::M##Response* resp) {                              \
    return instr_.run(#M, *req, [&] { return h_.stats->fn(*req, resp); });                \
  }

BERTH_CRI_STATS(ContainerStats, containerStats)
BERTH_CRI_STATS(ListContainerStats, listContainerStats)
BERTH_CRI_STATS(PodSandboxStats, podSandboxStats)
BERTH_CRI_STATS(ListPodSandboxStats, listPodSandboxStats)
BERTH_CRI_STATS(ListMetricDescriptors, listMetricDescriptors)
BERTH_CRI_STATS(ListPodSandboxMetrics, listPodSandboxMetrics)

grpc::Status RuntimeServiceImpl::StreamContainerStats(
    grpc::ServerContext*, const v1::StreamContainerStatsRequest* req,
    grpc::ServerWriter<v1::StreamContainerStatsResponse>* w) {
  return instr_.run("StreamContainerStats", *req,
                    [&] { return h_.stats->streamContainerStats(*req, w); });
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxStats(
    grpc::ServerContext*, const v1::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriter<v1::StreamPodSandboxStatsResponse>* w) {
  return instr_.run("StreamPodSandboxStats", *req,
                    [&] { return h_.stats->streamPodSandboxStats(*req, w); });
}

grpc::Status RuntimeServiceImpl::StreamPodSandboxMetrics(
    grpc::ServerContext*, const v1::StreamPodSandboxMetricsRequest* req,
    grpc::ServerWriter<v1::StreamPodSandboxMetricsResponse>* w) {
  return instr_.run("StreamPodSandboxMetrics", *req,
                    [&] { return h_.stats->streamPodSandboxMetrics(*req, w); });
}


BERTH_CRI_UNARY_TO(ImageServiceImpl, ListImages, list)
BERTH_CRI_UNARY_TO(ImageServiceImpl, ImageStatus, status)
BERTH_CRI_UNARY_TO(ImageServiceImpl, PullImage, pull)
BERTH_CRI_UNARY_TO(ImageServiceImpl, RemoveImage, remove)
BERTH_CRI_UNARY_TO(ImageServiceImpl, ImageFsInfo, fsInfo)

grpc::Status ImageServiceImpl::StreamImages(grpc::ServerContext*,
                                            const v1::StreamImagesRequest* req,
                                            grpc::ServerWriter<v1::StreamImagesResponse>* w) {
  return instr_.run("StreamImages", *req, [&] { return h_.stream(*req, w); });
}

}  // namespace berth::cri
