// berthd's process-level wiring: directories, the root lock, the store, the CRI server on its
// unix socket (accepted by CriListener), and an orderly shutdown.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/lock_file.h"
#include "cri/instrumented.h"
#include "cri/runtime_info.h"
#include "cri/runtime_service.h"
#include "daemon/config.h"
#include "daemon/cri_listener.h"
#include "daemon/daemon_metrics.h"
#include "events/backoff_monitor.h"
#include "image/image_manager.h"
#include "network/cni.h"
#include "sandbox/controller.h"
#include "sandbox/runtime_features.h"
#include "store/store.h"
#include "streaming/server.h"

namespace berth::daemon {

// Owned by main(); start() and shutdown() are called from the main thread only.
class Daemon {
 public:
  // Prepares directories, takes the root lock (a second berthd on the same root is refused),
  // opens the store and starts serving. Signals must already be blocked in the calling thread
  // so that gRPC's threads inherit the mask.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Daemon>> start(const Config& config);

  // Stops accepting, lets in-flight calls finish for up to grpc.shutdown_timeout_seconds,
  // then removes the socket and closes the store.
  void shutdown();

  // SIGHUP: applies what can change while berthd runs (log level and format, registries and
  // their credentials, the registry host directory, download timeouts, pinned images) from a
  // config already parsed; keys that need a restart are logged and keep their running values.
  // InvalidArgument (nothing applied) when a value cannot be used. In-flight calls keep the
  // settings they began with.
  [[nodiscard]] absl::Status reload(const Config& next);

  ~Daemon();

 private:
  explicit Daemon(const Config& config);
  [[nodiscard]] absl::Status prepareSocketPath();
  [[nodiscard]] absl::Status openImages();
  [[nodiscard]] absl::Status openSandboxes();
  [[nodiscard]] absl::Status serve();
  // A runtime handler's binding (its runtime found, its features probed and recorded).
  struct BoundHandler {
    sandbox::RuntimeBinding binding;
    sandbox::RuntimeFeatures features;
  };
  BoundHandler bindHandler(const std::string& name, const RuntimeHandler& h);

  Config config_;
  absl::Mutex reload_mu_;  // one reload at a time
  std::shared_ptr<spdlog::logger> log_;
  // First in, last out: the components below feed it, and its endpoint reads them.
  std::unique_ptr<DaemonMetrics> metrics_;
  std::optional<LockFile> lock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<cri::ReadyAnswers> answers_;  // observes store_
  std::unique_ptr<image::ContentStore> content_;
  std::unique_ptr<image::OverlaySnapshotter> snapshots_;
  std::unique_ptr<image::RegistryClient> registry_;
  std::unique_ptr<image::ImageManager> images_;
  std::unique_ptr<cri::ImageHandlers> image_handlers_;
  std::unique_ptr<network::CniManager> cni_;
  std::unique_ptr<events::EventLoop> loop_;  // shim events and back-off retries
  std::unique_ptr<events::BackoffMonitor> monitor_;
  std::unique_ptr<sandbox::ControllerRegistry> controllers_;
  std::unique_ptr<cri::EventHub> events_;
  std::unique_ptr<stats::Collector> collector_;
  std::unique_ptr<cri::StatsHandlers> stats_handlers_;
  std::unique_ptr<container::ContainerManager> containers_;
  std::unique_ptr<cri::ContainerHandlers> container_handlers_;
  std::unique_ptr<cri::PodHandlers> pod_handlers_;
  std::unique_ptr<cri::StreamHandlers> stream_handlers_;
  std::unique_ptr<streaming::Server> streaming_;
  std::unique_ptr<cri::Instrumented> instrumented_;
  std::unique_ptr<cri::RuntimeInfo> runtime_info_;
  // What each runtime handler's runtime (and the kernel) can do, probed at start.
  std::map<std::string, sandbox::RuntimeFeatures> features_;
  std::string no_idmap_;  // why no pod may have a user namespace of its own here, or ""
  std::unique_ptr<cri::RuntimeServiceImpl> runtime_service_;
  std::unique_ptr<cri::ImageServiceImpl> image_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CriListener> listener_;  // accepts for server_
};

}  // namespace berth::daemon
