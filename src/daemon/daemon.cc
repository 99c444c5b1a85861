// Start-up and shutdown of berthd.
#include "daemon/daemon.h"

#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/idmap.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "daemon/registry_options.h"
#include "network/netns.h"
#include "oci/container_spec.h"
#include "sandbox/pause_rootfs.h"
#include "sandbox/podsandbox.h"

namespace berth::daemon {
namespace {

// True when something accepts connections on the unix socket at `path`.
bool socketInUse(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

cri::Condition runtimeCondition(const std::string& binary) {
  auto found = findExecutable(binary);
  if (found.ok()) return {.ready = true};
  return {.ready = false,
          .reason = "OCIRuntimeNotFound",
          .message = std::string(found.status().message())};
}

}  // namespace

Daemon::Daemon(const Config& config)
    : config_(config), log_(logging::get("daemon")), metrics_(std::make_unique<DaemonMetrics>()) {}

Daemon::~Daemon() { shutdown(); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::start(const Config& config) {
  std::unique_ptr<Daemon> d(new Daemon(config));
  // Pod and container state is root's alone: local users reach nothing below root and state
  // (state is 0711 only so that members of grpc.gid can reach the socket in it).
  BERTH_RETURN_IF_ERROR(makeDirWithMode(config.root, 0700));
  BERTH_RETURN_IF_ERROR(makeDirWithMode(config.state, 0711));
  auto lock = LockFile::acquire(config.root + "/berthd.lock");
  if (!lock.ok()) {
    if (absl::IsFailedPrecondition(lock.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("another berthd is already running on root ", config.root, ": ",
                       lock.status().message()));
    }
    return lock.status();
  }
  d->lock_.emplace(std::move(*lock));

  auto store = store::Store::open(config.root + "/meta.db");
  if (!store.ok()) return annotate(store.status(), "open metadata store");
  d->store_ = std::move(*store);
  // Status and list answers follow every record change from here on.
  d->answers_ = std::make_unique<cri::ReadyAnswers>(*d->store_);

  BERTH_RETURN_IF_ERROR(d->openImages());
  BERTH_RETURN_IF_ERROR(d->openSandboxes());
  BERTH_RETURN_IF_ERROR(d->prepareSocketPath());
  BERTH_RETURN_IF_ERROR(d->serve());
  return d;
}

absl::Status Daemon::openImages() {
  auto content = image::ContentStore::open(config_.root + "/content");
  if (!content.ok()) return annotate(content.status(), "open content store");
  content_ = std::move(*content);
  auto snapshots = image::OverlaySnapshotter::open(config_.root + "/snapshots", store_.get());
  if (!snapshots.ok()) return annotate(snapshots.status(), "open snapshotter");
  snapshots_ = std::move(*snapshots);
  if (auto st = snapshots_->cleanup(); !st.ok()) log_->warn("snapshot clean-up: {}", st.message());
  auto registry_options = registryOptions(config_);
  if (!registry_options.ok()) return registry_options.status();
  registry_ = std::make_unique<image::RegistryClient>(std::move(*registry_options));
  images_ = std::make_unique<image::ImageManager>(
      *store_, *content_, *snapshots_, *registry_,
      image::ImageManagerOptions{
          .max_concurrent_downloads = config_.image.max_concurrent_downloads,
          .observer = metrics_->pullObserver(),
          .sandbox_image = config_.cri.sandbox_image,
          .pinned_images = config_.image.pinned_images,
          .max_layer_bytes = static_cast<uint64_t>(config_.image.max_layer_bytes),
          .max_layer_entries = static_cast<uint64_t>(config_.image.max_layer_entries)});
  images_->refreshUsage();
  image_handlers_ = std::make_unique<cri::ImageHandlers>(*images_);
  return absl::OkStatus();
}

absl::Status Daemon::openSandboxes() {
  // berth-shim and berth-pause are installed beside berthd.
  std::error_code ec;
  std::string bin_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
  if (ec) return absl::InternalError(absl::StrCat("find berthd's own path: ", ec.message()));
  std::string shim_binary = bin_dir + "/berth-shim";
  std::string pause_binary = bin_dir + "/berth-pause";
  for (const auto& p : {shim_binary, pause_binary}) {
    if (::access(p.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(p, " is missing: install it beside berthd"));
    }
  }
  std::string pods_dir = config_.state + "/pods";
  std::string netns_dir = config_.state + "/netns";
  std::string userns_dir = config_.state + "/userns";
  // 0711: a pod's own user namespace reaches its rootfs below them (the pod and container
  // folders themselves let only the pod's mapped root group through).
  BERTH_RETURN_IF_ERROR(makeDirWithMode(pods_dir, 0711));
  BERTH_RETURN_IF_ERROR(makeDirWithMode(netns_dir, 0700));
  BERTH_RETURN_IF_ERROR(makeDirWithMode(userns_dir, 0700));
  std::string pause_rootfs = config_.state + "/pause-rootfs";
  BERTH_RETURN_IF_ERROR(annotate(sandbox::preparePauseRootfs(pause_rootfs, pause_binary),
                                 "prepare the built-in pause rootfs"));

  sandbox::PodSandboxOptions opts;
  opts.pods_dir = pods_dir;
  opts.shim_binary = shim_binary;
  opts.pause_rootfs = pause_rootfs;
  opts.sandbox_image = config_.cri.sandbox_image;
  opts.cgroup_parent = config_.cgroup_parent;
  opts.default_handler = config_.cri.default_runtime_handler;
  opts.log_level = config_.log.level;
  const oci::HostFacts host = oci::detectHostFacts();  // pods and containers alike
  opts.host = host;
  cni_ = std::make_unique<network::CniManager>(network::CniOptions{
      .conf_dir = config_.cni.conf_dir,
      .bin_dirs = config_.cni.bin_dirs,
      .default_network = config_.cni.default_network,
      .default_bridge = config_.cni.default_bridge,
      .default_subnet = config_.cni.default_subnet,
      .pod_cidr_file = config_.state + "/pod-cidrs",
      .plugin_timeout = absl::Seconds(config_.cni.plugin_timeout_seconds)});
  cri::PodHandlerOptions pod_opts;
  pod_opts.default_handler = config_.cri.default_runtime_handler;
  pod_opts.netns_dir = netns_dir;
  pod_opts.userns_dir = userns_dir;
  // Pods of their own user namespace need idmapped overlay roots; checked once, where the
  // snapshots live.
  std::string no_idmap = idmappedOverlayUnsupported(config_.root + "/snapshots");
  if (no_idmap.empty()) no_idmap = unreachableByOthers(config_.state);
  if (!no_idmap.empty()) log_->info("no user namespaces for pods: {}", no_idmap);
  pod_opts.cni = cni_.get();
  events_ = std::make_unique<cri::EventHub>();
  pod_opts.events = events_.get();
  no_idmap_ = no_idmap;
  for (const auto& [name, h] : config_.cri.runtimes) {
    BoundHandler bound = bindHandler(name, h);
    if (!bound.features.user_namespaces) {
      pod_opts.no_user_namespaces[name] = bound.features.user_namespaces_why;
    }
    opts.runtimes[name] = bound.binding;
    pod_opts.sandboxers[name] = h.sandboxer;
  }
  const std::map<std::string, sandbox::RuntimeBinding> runtimes = opts.runtimes;
  loop_ = std::make_unique<events::EventLoop>();
  monitor_ = std::make_unique<events::BackoffMonitor>(*loop_);
  auto podsandbox = std::make_unique<sandbox::PodSandboxController>(*store_, *images_, *snapshots_,
                                                                    *loop_, *monitor_, opts);
  // A pod whose pause exits (on its own, or stopped) gets its STOPPED event.
  podsandbox->setExitObserver([hub = events_.get()](const std::string& id) {
    hub->publish(id, id, cri::v1::CONTAINER_STOPPED_EVENT);
  });
  BERTH_RETURN_IF_ERROR(annotate(podsandbox->recover(), "recover pod sandboxes"));
  controllers_ = std::make_unique<sandbox::ControllerRegistry>();
  metrics_->watch(*store_, [pods = podsandbox.get()] { return pods->shimPids(); });
  metrics_->registry().callback(
      "berth_cri_answers_made_total",
      "CRI status and list answers made from pod and container records (each parses the "
      "record's stored config and spec once); status and list calls only copy them.",
      metrics::Type::kCounter, {},
      [answers = answers_.get()](std::vector<metrics::CallbackSample>& out) {
        out.push_back({.value = static_cast<double>(answers->made())});
      });
  controllers_->add("podsandbox", std::move(podsandbox));

  std::string containers_dir = config_.state + "/containers";
  BERTH_RETURN_IF_ERROR(makeDirWithMode(containers_dir, 0711));
  containers_ = std::make_unique<container::ContainerManager>(
      *store_, *images_, *snapshots_, *controllers_, *monitor_,
      container::ContainerOptions{.containers_dir = containers_dir,
                                  .cgroup_parent = config_.cgroup_parent,
                                  .max_log_line = config_.cri.max_container_log_line_size,
                                  .pids_limit = config_.cri.pids_limit,
                                  .cdi_spec_dirs = config_.cri.cdi_spec_dirs,
                                  .host = host,
                                  .criu = config_.cri.criu_path});
  containers_->setObserver([hub = events_.get()](const std::string& id, const std::string& pod,
                                                 container::ContainerEvent e) {
    static constexpr cri::v1::ContainerEventType kTypes[] = {
        cri::v1::CONTAINER_CREATED_EVENT, cri::v1::CONTAINER_STARTED_EVENT,
        cri::v1::CONTAINER_STOPPED_EVENT,
        cri::v1::CONTAINER_DELETED_EVENT};
    hub->publish(id, pod, kTypes[static_cast<int>(e)]);
  });
  BERTH_RETURN_IF_ERROR(annotate(containers_->recover(), "recover containers"));
  // Blobs and layers of a pull or an image removal cut off by a crash belong to no image.
  if (auto gc = images_->garbageCollect(); !gc.ok()) {
    log_->warn("garbage collection at start-up: {}", gc.message());
  }
  container_handlers_ =
      std::make_unique<cri::ContainerHandlers>(*store_, *images_, *containers_, *answers_);
  collector_ = std::make_unique<stats::Collector>(stats::CollectorOptions{
      .interval = absl::Seconds(config_.cri.stats_collect_period_seconds),
      .max_age = absl::Milliseconds(config_.cri.stats_max_age_milliseconds),
      // ImageFsInfo reads the last measurement; the walk runs here, off the request path.
      .on_slow_round = [images = images_.get()] { images->refreshUsage(); }});
  collector_->start();
  stats_handlers_ =
      std::make_unique<cri::StatsHandlers>(*store_, *snapshots_, *collector_);
  pod_handlers_ = std::make_unique<cri::PodHandlers>(*store_, *controllers_, pod_opts, *answers_,
                                                     container_handlers_.get());
  // Before serving: what no record names (debris of a crash inside one step) is torn down.
  if (size_t n = pod_handlers_->reconcile(
          {.pods_dir = pods_dir, .runtimes = runtimes, .cgroup_parent = config_.cgroup_parent});
      n > 0) {
    log_->warn("removed {} thing(s) that no pod or container record names", n);
  }
  // What a crash cut off (a Stop or Remove, a RunPodSandbox that never answered) is finished
  // in the background: start-up does not wait for it.
  if (size_t n = pod_handlers_->finishCutOff(*monitor_); n > 0) {
    log_->warn("finishing {} pod operation(s) cut off by a crash", n);
  }
  stream_handlers_ = std::make_unique<cri::StreamHandlers>(*store_, *containers_);
  streaming_ = std::make_unique<streaming::Server>(
      streaming::ServerOptions{.address = config_.streaming.address,
                               .port = config_.streaming.port,
                               .token_ttl = absl::Seconds(config_.streaming.token_ttl_seconds),
                               .upgrade_timeout =
                                   absl::Seconds(config_.streaming.upgrade_timeout_seconds),
                               .max_pending_per_peer = config_.streaming.max_pending_per_peer,
                               .tls_cert_file = config_.streaming.tls_cert_file,
                               .tls_key_file = config_.streaming.tls_key_file},
      *stream_handlers_);
  BERTH_RETURN_IF_ERROR(annotate(streaming_->start(), "start the streaming server"));
  stream_handlers_->setServer(streaming_.get());
  // Events carry the pod's status with its containers', as PodSandboxStatus reports them.
  events_->setStatusFiller([pods = pod_handlers_.get()](const std::string& sandbox_id,
                                                        cri::v1::ContainerEventResponse* event) {
    cri::v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(sandbox_id);
    cri::v1::PodSandboxStatusResponse resp;
    if (!pods->status(req, &resp).ok()) return;  // a deleted pod has no status left
    *event->mutable_pod_sandbox_status() = std::move(*resp.mutable_status());
    *event->mutable_containers_statuses() = std::move(*resp.mutable_containers_statuses());
  });
  return absl::OkStatus();
}

absl::Status Daemon::prepareSocketPath() {
  const std::string& path = config_.grpc.address;
  std::string parent = std::filesystem::path(path).parent_path().string();
  BERTH_RETURN_IF_ERROR(makeDirs(parent, 0711));
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0) return lastErrnoStatus(absl::StrCat("stat ", parent));
  if ((st.st_mode & S_IWOTH) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket directory ", parent, " is world-writable; refusing to serve the CRI there"));
  }
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
    }
    if (socketInUse(path)) {
      return absl::FailedPreconditionError(
          absl::StrCat("socket ", path, " is served by another process"));
    }
    log_->info("removing stale socket {}", path);
    if (::unlink(path.c_str()) != 0) return lastErrnoStatus(absl::StrCat("remove ", path));
  } else if (errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("stat ", path));
  }
  return absl::OkStatus();
}

absl::Status Daemon::serve() {
  instrumented_ = std::make_unique<cri::Instrumented>(logging::get("cri"), &metrics_->rpc());
  std::vector<cri::HandlerInfo> handlers;
  for (const auto& [name, h] : config_.cri.runtimes) {
    handlers.push_back({.name = name,
                        .recursive_read_only = features_[name].recursive_read_only,
                        .user_namespaces = features_[name].user_namespaces});
  }
  // Readiness is computed once here, so Status answers from memory.
  cri::Condition runtime_ready =
      runtimeCondition(config_.cri.runtimes.at(config_.cri.default_runtime_handler).runtime_path);
  runtime_info_ = std::make_unique<cri::RuntimeInfo>(cri::RuntimeInfoOptions{
      .config_json = configToJson(config_).dump(),
      .config_sources_json = nlohmann::json(config_.sources).dump(),
      .handlers = handlers,
      .default_handler = config_.cri.default_runtime_handler,
      .runtime_ready = [runtime_ready] { return runtime_ready; },
      .network_ready =
          [cni = cni_.get()] {
            network::CniReadiness r = cni->readiness();
            return cri::Condition{.ready = r.ready, .reason = r.reason, .message = r.message};
          },
      .set_pod_cidrs =
          [cni = cni_.get()](const std::vector<std::string>& cidrs) {
            return cni->setPodCidrs(cidrs);
          },
  });
  runtime_service_ = std::make_unique<cri::RuntimeServiceImpl>(
      *instrumented_,
      cri::RuntimeHandlers{.info = runtime_info_.get(),
                           .pods = pod_handlers_.get(),
                           .containers = container_handlers_.get(),
                           .events = events_.get(),
                           .stats = stats_handlers_.get(),
                           .streams = stream_handlers_.get()});
  image_service_ = std::make_unique<cri::ImageServiceImpl>(*instrumented_, *image_handlers_);

  grpc::ServerBuilder builder;
  // No listening port: berthd accepts on the socket itself (CriListener, which survives
  // accept errors that would end gRPC's own listener) and hands each connection over.
  builder.SetMaxReceiveMessageSize(config_.grpc.max_recv_message_size);
  // Connections that hold one of the max_connections slots for nothing are closed: no call for
  // the idle timeout (this also ends connections that never speak HTTP/2), or no answer to a
  // keepalive ping (a dead or stopped peer).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             config_.grpc.idle_connection_timeout_seconds * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 120 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.RegisterService(runtime_service_.get());
  builder.RegisterService(image_service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) return absl::UnavailableError("cannot start the CRI server (see log above)");
  const std::string& path = config_.grpc.address;
  auto listen_fd = listenUnix(path, static_cast<gid_t>(config_.grpc.gid));
  if (!listen_fd.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve the CRI on ", path, ": ", listen_fd.status().message()));
  }
  rlimit fds{};
  ::getrlimit(RLIMIT_NOFILE, &fds);
  int bound = connectionBound(config_.grpc.max_connections, fds.rlim_cur);
  log_->info(
      "CRI socket: at most {} connections open at once (grpc.max_connections {}, "
      "open-file limit {})",
      bound, config_.grpc.max_connections, fds.rlim_cur);
  auto listener = CriListener::start(
      std::move(*listen_fd),
      [server = server_.get()](int fd) { grpc::AddInsecureChannelFromFd(server, fd); },
      CriListenerOptions{.max_connections = bound});
  if (!listener.ok()) {
    ::unlink(path.c_str());
    return listener.status();
  }
  listener_ = std::move(*listener);
  log_->info("berth serving runtime.v1 on {} (root {}, state {})", path, config_.root,
             config_.state);
  return metrics_->serve(config_.metrics.address);
}

Daemon::BoundHandler Daemon::bindHandler(const std::string& name, const RuntimeHandler& h) {
  // The shim runs the runtime by absolute path.
  auto resolved = findExecutable(h.runtime_path);
  sandbox::RuntimeFeatures& features = features_[name];
  if (resolved.ok()) features = sandbox::probeRuntimeFeatures(*resolved);
  if (!features.recursive_read_only) {
    log_->info("runtime handler {}: no recursive read-only mounts: {}", name,
               resolved.ok() ? features.recursive_read_only_why : "runtime not found");
  }
  if (!resolved.ok()) features.user_namespaces_why = "runtime not found";
  if (features.user_namespaces && !no_idmap_.empty()) {
    features.user_namespaces = false;
    features.user_namespaces_why = no_idmap_;
  }
  if (!features.user_namespaces) {
    log_->info("runtime handler {}: no user namespaces for pods: {}", name,
               features.user_namespaces_why);
  }
  return BoundHandler{
      .binding = {.runtime_path = resolved.ok() ? *resolved : h.runtime_path,
                  .runtime_root = h.runtime_root.empty()
                                      ? absl::StrCat(config_.state, "/runtime/", name)
                                      : h.runtime_root,
                  .runtime_type = h.runtime_type,
                  .exec_in_monitor = h.exec == "monitor",
                  .rlimits =
                      oci::parseUlimits(h.default_ulimits).value_or(std::vector<oci::Rlimit>{}),
                  .recursive_read_only = features.recursive_read_only},
      .features = features};
}

absl::Status Daemon::reload(const Config& next) {
  absl::MutexLock lock(&reload_mu_);
  // Every value is derived first: a file that cannot be used changes nothing.
  BERTH_ASSIGN_OR_RETURN(image::RegistryOptions registry, registryOptions(next));
  const nlohmann::json before = configToJson(config_).flatten();
  const nlohmann::json after = configToJson(next).flatten();
  auto reloadable = [](const std::string& key) {
    for (const char* prefix :
         {"/log/", "/image/registries", "/image/config_path", "/image/pinned_images",
          "/image/connect_timeout_seconds", "/image/retries", "/image/request_timeout_seconds",
          "/image/blob_timeout_seconds", "/image/progress_timeout_seconds",
          "/image/min_transfer_rate_bytes_per_second", "/cri/stats_collect_period_seconds",
          "/streaming/token_ttl_seconds", "/metrics/address"}) {
      if (key.rfind(prefix, 0) == 0) return true;
    }
    return false;
  };
  std::set<std::string> applied, ignored;
  auto compare = [&](const nlohmann::json& a, const nlohmann::json& b) {
    for (const auto& [key, value] : a.items()) {
      auto other = b.find(key);
      if (other != b.end() && *other == value) continue;
      (reloadable(key) ? applied : ignored).insert(key);
    }
  };
  compare(before, after);
  compare(after, before);
  // Runtime handlers the file adds are served from now on (their keys are applied); one it
  // removes or changes stays as it runs (pods may use it) until a restart.
  std::vector<std::string> added;
  for (const auto& [name, h] : next.cri.runtimes) {
    if (config_.cri.runtimes.contains(name)) continue;
    added.push_back(name);
    const std::string prefix = "/cri/runtimes/" + name + "/";
    for (auto it = ignored.begin(); it != ignored.end();) {
      if (it->rfind(prefix, 0) == 0) {
        applied.insert(*it);
        it = ignored.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (next.log.level != config_.log.level || next.log.format != config_.log.format) {
    BERTH_RETURN_IF_ERROR(logging::init(next.log.level, next.log.format == "json"
                                                            ? logging::Format::kJson
                                                            : logging::Format::kText));
  }
  registry_->setOptions(std::move(registry));
  images_->setPinnedImages(next.image.pinned_images);
  for (const std::string& name : added) {
    const RuntimeHandler& h = next.cri.runtimes.at(name);
    BoundHandler bound = bindHandler(name, h);
    if (auto c = controllers_->get(h.sandboxer); c.ok()) {
      if (auto* pods = dynamic_cast<sandbox::PodSandboxController*>(*c)) {
        pods->addRuntime(name, bound.binding);
      }
    }
    pod_handlers_->addHandler(name, h.sandboxer,
                              bound.features.user_namespaces
                                  ? std::nullopt
                                  : std::optional<std::string>(bound.features.user_namespaces_why));
    runtime_info_->addHandler({.name = name,
                               .recursive_read_only = bound.features.recursive_read_only,
                               .user_namespaces = bound.features.user_namespaces});
    config_.cri.runtimes[name] = h;
    log_->info("reload: runtime handler {} added ({})", name, bound.binding.runtime_path);
  }
  if (collector_) collector_->setInterval(absl::Seconds(next.cri.stats_collect_period_seconds));
  if (streaming_) streaming_->cache().setTtl(absl::Seconds(next.streaming.token_ttl_seconds));
  if (next.metrics.address != config_.metrics.address) {
    if (absl::Status st = metrics_->moveTo(config_.metrics.address, next.metrics.address);
        st.ok()) {
      config_.metrics.address = next.metrics.address;
    } else {
      log_->error("reload: metrics stay on \"{}\": {}", config_.metrics.address, st.message());
    }
  }
  config_.cri.stats_collect_period_seconds = next.cri.stats_collect_period_seconds;
  config_.streaming.token_ttl_seconds = next.streaming.token_ttl_seconds;
  config_.log = next.log;
  const auto keep = config_.image;
  config_.image = next.image;
  // Not reloaded: download concurrency and layer bounds live in the image manager.
  config_.image.max_concurrent_downloads = keep.max_concurrent_downloads;
  config_.image.max_layer_bytes = keep.max_layer_bytes;
  config_.image.max_layer_entries = keep.max_layer_entries;
  // Values reloaded (and those of added handlers) come from the new file; the others keep
  // where they came from.
  for (const auto& [key, source] : next.sources) {
    if (reloadable(key) || applied.contains(key)) config_.sources[key] = source;
  }
  if (runtime_info_) {
    runtime_info_->setConfigJson(configToJson(config_).dump(),
                                 nlohmann::json(config_.sources).dump());
  }
  for (const std::string& key : ignored) {
    log_->warn("reload: config key {} changed: it needs a restart; the running value stays", key);
  }
  log_->info("reload: configuration applied ({} changed)",
             applied.empty() ? std::string("nothing") : absl::StrJoin(applied, ", "));
  return absl::OkStatus();
}

void Daemon::shutdown() {
  if (metrics_) metrics_->stopServing();  // its gauges read the components stopped below
  if (server_) {
    if (listener_) listener_->stop();  // new connections are refused from here on
    log_->info("shutting down: no new calls, {} s for calls in flight",
               config_.grpc.shutdown_timeout_seconds);
    instrumented_->beginDrain();
    if (events_) events_->close();  // event streams end now instead of holding up the drain
    bool idle = instrumented_->waitIdle(absl::Now() +
                                        absl::Seconds(config_.grpc.shutdown_timeout_seconds));
    if (!idle) log_->warn("calls still in flight after the shutdown timeout; cancelling them");
    // Nothing of ours runs now; give gRPC a moment to say goodbye to connected clients.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    server_->Wait();
    server_.reset();
  }
  if (listener_) {
    listener_.reset();
    ::unlink(config_.grpc.address.c_str());
  }
  // Retries and the work recovery finishes use the handlers and the container manager: they end
  // (work in progress finishes; the rest is finished after the restart) before those go.
  if (containers_) containers_->beginShutdown();
  if (monitor_) monitor_->stop();
  // No subscriber is left to build events for: the handlers the events read can go.
  if (events_) events_->close();
  // Streaming sessions end here; their exec'd processes are killed by their shims.
  if (streaming_) streaming_->stop();
  streaming_.reset();
  stream_handlers_.reset();
  pod_handlers_.reset();
  container_handlers_.reset();
  stats_handlers_.reset();
  collector_.reset();
  // No exit may be handled by the controllers and the container manager destroyed below: the
  // loop stops first (work in progress finishes).
  if (loop_) loop_->stop();
  controllers_.reset();  // closes shim connections; pods keep running under their shims
  containers_.reset();
  // The netns dir is a private mount of itself while pods pin namespaces in it; with none
  // left, berthd leaves no mount behind.
  for (const std::string& dir : {config_.state + "/netns", config_.state + "/userns"}) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec) && std::filesystem::is_empty(dir, ec) && !ec) {
      if (auto st = network::releaseNetnsDir(dir); !st.ok()) {
        log_->warn("release {}: {}", dir, st.message());
      }
    }
  }
  monitor_.reset();
  loop_.reset();
  cni_.reset();
  image_handlers_.reset();
  images_.reset();
  registry_.reset();
  snapshots_.reset();
  content_.reset();
  answers_.reset();
  store_.reset();
  lock_.reset();
}

}  // namespace berth::daemon
