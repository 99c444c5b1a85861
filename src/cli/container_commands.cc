// berthctl create / start / stop / rm / ps / inspect / logs / exec / run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <regex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/stream_commands.h"
#include "cli/inspect.h"
#include "cli/cri_log_reader.h"
#include "cli/output.h"
#include "common/undo.h"

namespace berth::cli {
namespace {

namespace v1 = runtime::v1;

absl::Status toAbsl(const std::string& rpc, const grpc::Status& st) {
  if (st.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()), describeFailure(rpc, st));
}

// The configured timeout plus `extra` seconds, for calls that wait by design (StopContainer's
// grace period, ExecSync's own timeout).
std::unique_ptr<grpc::ClientContext> contextWith(const GlobalOptions& options, int64_t extra) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(options.timeout_seconds + extra));
  return ctx;
}

// PullImage for the image a container config names; no deadline, as `pull` has none.
bool pullFor(Client& client, const v1::ContainerConfig& config, const v1::PodSandboxConfig& pod) {
  if (config.image().image().empty()) {
    std::cerr << "the container config names no image to pull\n";
    return false;
  }
  v1::PullImageRequest req;
  *req.mutable_image() = config.image();
  *req.mutable_sandbox_config() = pod;
  v1::PullImageResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = client.image().PullImage(&ctx, req, &resp);
  if (!st.ok()) {
    reportFailure("PullImage", st);
    return false;
  }
  return true;
}

// CreateContainer; prints the failure and returns nullopt when it fails.
std::optional<std::string> createContainer(Client& client, const v1::CreateContainerRequest& req,
                                           bool pulled) {
  v1::CreateContainerResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().CreateContainer(ctx.get(), req, &resp);
  if (!st.ok()) {
    reportFailure("CreateContainer", st);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND && !pulled) {
      std::cerr << "(if the image is missing: pull it first, or pass --pull)\n";
    }
    return std::nullopt;
  }
  return resp.container_id();
}

struct CreateArgs {
  std::string pod_id;
  std::string container_config;
  std::string pod_config;
  bool pull = false;
};

int runCreate(const GlobalOptions& options, const CreateArgs& args) {
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(args.pod_id);
  if (!readJsonMessage(args.container_config, "container config", *req.mutable_config()) ||
      !readJsonMessage(args.pod_config, "pod config", *req.mutable_sandbox_config())) {
    return 2;
  }
  Client client(options);
  if (args.pull && !pullFor(client, req.config(), req.sandbox_config())) return 1;
  auto id = createContainer(client, req, args.pull);
  if (!id) return 1;
  std::cout << *id << "\n";
  return 0;
}

int runStart(const GlobalOptions& options, const std::vector<std::string>& ids) {
  Client client(options);
  int rc = 0;
  for (const auto& id : ids) {
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    auto ctx = client.context();
    grpc::Status st = client.runtime().StartContainer(ctx.get(), req, &resp);
    if (!st.ok()) {
      rc = reportFailure("StartContainer", st);
      continue;
    }
    std::cout << id << "\n";
  }
  return rc;
}

grpc::Status stopContainer(Client& client, const GlobalOptions& options, const std::string& id,
                           int64_t timeout) {
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout);
  v1::StopContainerResponse resp;
  auto ctx = contextWith(options, timeout);
  return client.runtime().StopContainer(ctx.get(), req, &resp);
}

grpc::Status removeContainer(Client& client, const std::string& id) {
  v1::RemoveContainerRequest req;
  req.set_container_id(id);
  v1::RemoveContainerResponse resp;
  auto ctx = client.context();
  return client.runtime().RemoveContainer(ctx.get(), req, &resp);
}

int runStop(const GlobalOptions& options, const std::vector<std::string>& ids, int64_t timeout) {
  if (timeout < 0) {
    std::cerr << "the timeout cannot be negative\n";
    return 2;
  }
  Client client(options);
  int rc = 0;
  for (const auto& id : ids) {
    grpc::Status st = stopContainer(client, options, id, timeout);
    if (!st.ok()) {
      rc = reportFailure("StopContainer", st);
      continue;
    }
    std::cout << id << "\n";
  }
  return rc;
}

int runRm(const GlobalOptions& options, const std::vector<std::string>& ids, bool force) {
  Client client(options);
  int rc = 0;
  for (const auto& id : ids) {
    if (force) {
      // RemoveContainer stops a running container too; --force only skips the grace period.
      grpc::Status st = stopContainer(client, options, id, 0);
      if (!st.ok() && st.error_code() != grpc::StatusCode::NOT_FOUND) {
        rc = reportFailure("StopContainer", st);
        continue;
      }
    }
    grpc::Status st = removeContainer(client, id);
    if (!st.ok()) {
      rc = reportFailure("RemoveContainer", st);
      continue;
    }
    std::cout << id << "\n";
  }
  return rc;
}

std::optional<v1::ContainerState> parseState(const std::string& name) {
  std::string s = absl::AsciiStrToLower(name);
  if (absl::StartsWith(s, "container_")) s = s.substr(10);
  if (s == "created") return v1::CONTAINER_CREATED;
  if (s == "running") return v1::CONTAINER_RUNNING;
  if (s == "exited") return v1::CONTAINER_EXITED;
  if (s == "unknown") return v1::CONTAINER_UNKNOWN;
  return std::nullopt;
}

const char* stateName(v1::ContainerState s) {
  switch (s) {
    case v1::CONTAINER_CREATED: return "Created";
    case v1::CONTAINER_RUNNING: return "Running";
    case v1::CONTAINER_EXITED: return "Exited";
    default: return "Unknown";
  }
}

// The IMAGE column: the image as the config named it; an image id is shortened like crictl's.
std::string shownImage(const v1::Container& c) {
  std::string image = c.image().image().empty() ? c.image_ref() : c.image().image();
  if (absl::StartsWith(image, "sha256:")) return image.substr(7, 13);
  return image;
}

struct PsArgs {
  bool all = false;
  std::string id, pod, state, name;
  std::vector<std::string> labels;
  bool quiet = false;
};

int runPs(const GlobalOptions& options, const PsArgs& args) {
  auto format = commandOutputFormat(options.output);
  if (!format) return 2;
  v1::ListContainersRequest req;
  auto* f = req.mutable_filter();
  f->set_id(args.id);
  f->set_pod_sandbox_id(args.pod);
  if (!args.state.empty()) {
    auto state = parseState(args.state);
    if (!state) {
      std::cerr << "state \"" << args.state << "\" is not created, running, exited or unknown\n";
      return 2;
    }
    f->mutable_state()->set_state(*state);
  } else if (!args.all) {
    f->mutable_state()->set_state(v1::CONTAINER_RUNNING);  // crictl's default
  }
  for (const auto& l : args.labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    (*f->mutable_label_selector())[kv.first] = kv.second;
  }
  std::optional<std::regex> name;
  if (!args.name.empty()) {
    try {
      name.emplace(args.name);
    } catch (const std::regex_error& e) {
      std::cerr << "--name \"" << args.name << "\" is not a regular expression: " << e.what()
                << "\n";
      return 2;
    }
  }
  Client client(options);
  v1::ListContainersResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().ListContainers(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("ListContainers", st);
  v1::ListContainersResponse shown;
  for (const auto& c : resp.containers()) {
    if (name && !std::regex_search(c.metadata().name(), *name)) continue;
    *shown.add_containers() = c;
  }
  // Newest first, as crictl lists them.
  std::stable_sort(shown.mutable_containers()->begin(), shown.mutable_containers()->end(),
                   [](const v1::Container& a, const v1::Container& b) {
                     return a.created_at() > b.created_at();
                   });
  if (args.quiet) {
    for (const auto& c : shown.containers()) std::cout << c.id() << "\n";
    return 0;
  }
  if (*format != OutputFormat::kTable) {
    std::cout << render(messageToJson(shown), *format);
    return 0;
  }
  std::printf("%-14s %-30s %-18s %-10s %-25s %-8s %s\n", "CONTAINER", "IMAGE", "CREATED", "STATE",
              "NAME", "ATTEMPT", "POD ID");
  for (const auto& c : shown.containers()) {
    std::printf("%-14s %-30s %-18s %-10s %-25s %-8u %s\n", c.id().substr(0, 13).c_str(),
                shownImage(c).c_str(), timeAgo(c.created_at()).c_str(), stateName(c.state()),
                c.metadata().name().c_str(), c.metadata().attempt(),
                c.pod_sandbox_id().substr(0, 13).c_str());
  }
  return 0;
}

int runInspect(const GlobalOptions& options, const std::vector<std::string>& ids) {
  return inspectEach<v1::ContainerStatusResponse>(
      options, ids, "ContainerStatus",
      [](Client& client, grpc::ClientContext* ctx, const std::string& id,
         v1::ContainerStatusResponse* resp) {
        v1::ContainerStatusRequest req;
        req.set_container_id(id);
        req.set_verbose(true);
        return client.runtime().ContainerStatus(ctx, req, resp);
      });
}

struct LogsArgs {
  std::string id;
  bool follow = false;
  int64_t tail = -1;
};

void writeMessage(const LogMessage& m) {
  std::FILE* out = m.stream == LogStream::kStdout ? stdout : stderr;
  std::fwrite(m.text.data(), 1, m.text.size(), out);
  if (m.newline) std::fputc('\n', out);
}

int runLogs(const GlobalOptions& options, const LogsArgs& args) {
  Client client(options);
  // nullopt: the call failed (printed); otherwise whether the container runs.
  auto running = [&](std::string* log_path) -> std::optional<bool> {
    v1::ContainerStatusRequest req;
    req.set_container_id(args.id);
    v1::ContainerStatusResponse resp;
    auto ctx = client.context();
    grpc::Status st = client.runtime().ContainerStatus(ctx.get(), req, &resp);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND && log_path == nullptr) return false;
    if (!st.ok()) {
      reportFailure("ContainerStatus", st);
      return std::nullopt;
    }
    if (log_path != nullptr) *log_path = resp.status().log_path();
    return resp.status().state() == v1::CONTAINER_RUNNING;
  };
  std::string path;
  auto was_running = running(&path);
  if (!was_running) return 1;
  if (path.empty()) {
    std::cerr << "container " << args.id << " has no log file (its pod names no log directory)\n";
    return 1;
  }

  // With --tail, what is in the file now is collected first and only the end printed.
  LogTail tail(args.tail);
  bool collecting = args.tail >= 0;
  CriLogReader reader([&](LogMessage&& m) {
    if (collecting) {
      tail.add(std::move(m));
    } else {
      writeMessage(m);
    }
  });
  CriLogFile file(path, reader);
  absl::Status opened = file.open();
  if (!opened.ok()) {
    std::cerr << opened.message() << "\n";
    return 1;
  }
  auto poll = [&] {
    auto n = file.poll();
    if (!n.ok()) std::cerr << n.status().message() << "\n";
    return n.ok();
  };
  auto done = [&](int rc) {
    reader.finish();
    for (const auto& m : tail.messages()) writeMessage(m);
    tail.messages().clear();
    if (reader.malformed() > 0) {
      std::fflush(stdout);
      std::fprintf(stderr, "berthctl: skipped %zu malformed lines in %s\n", reader.malformed(),
                   path.c_str());
    }
    return rc;
  };
  if (!poll()) return done(1);
  if (!args.follow || !*was_running) return done(0);
  for (const auto& m : tail.messages()) writeMessage(m);
  tail.messages().clear();
  collecting = false;

  auto checked = std::chrono::steady_clock::now();
  for (;;) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!poll()) return done(1);
    auto now = std::chrono::steady_clock::now();
    if (now - checked < std::chrono::seconds(1)) continue;
    checked = now;
    auto still = running(nullptr);
    if (!still) return done(1);
    if (!*still) break;
  }
  // It stopped: what it wrote last is in the file by now.
  return done(poll() ? 0 : 1);
}

struct ExecArgs {
  std::string id;
  bool sync = false;  // ExecSync, the default without -i/-t; accepted for crictl's syntax
  bool interactive = false;
  bool tty = false;
  std::string transport = "spdy";
  int64_t timeout = 0;
};

int runExec(const GlobalOptions& options, const ExecArgs& args,
            const std::vector<std::string>& cmd) {
  if (cmd.empty()) {
    std::cerr << "exec: no command given (berthctl exec ID CMD [ARGS...])\n";
    return 2;
  }
  if ((args.interactive || args.tty) && args.sync) {
    std::cerr << "exec: -s cannot be combined with -i or -t\n";
    return 2;
  }
  if (args.interactive || args.tty) {
    return runStreamingExec(options, args.id, cmd, args.interactive, args.tty, args.transport);
  }
  if (args.timeout < 0) {
    std::cerr << "the timeout cannot be negative\n";
    return 2;
  }
  Client client(options);
  v1::ExecSyncRequest req;
  req.set_container_id(args.id);
  for (const auto& a : cmd) req.add_cmd(a);
  req.set_timeout(args.timeout);
  v1::ExecSyncResponse resp;
  // Without a timeout the command may run as long as it likes.
  auto ctx = args.timeout > 0 ? contextWith(options, args.timeout)
                              : std::make_unique<grpc::ClientContext>();
  grpc::Status st = client.runtime().ExecSync(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("ExecSync", st);
  std::fwrite(resp.stdout().data(), 1, resp.stdout().size(), stdout);
  std::fflush(stdout);
  std::fwrite(resp.stderr().data(), 1, resp.stderr().size(), stderr);
  return resp.exit_code();
}

struct RunArgs {
  std::string container_config;
  std::string pod_config;
  std::string runtime;
  bool pull = false;
};

int runRun(const GlobalOptions& options, const RunArgs& args) {
  v1::RunPodSandboxRequest pod_req;
  v1::CreateContainerRequest req;
  if (!readJsonMessage(args.container_config, "container config", *req.mutable_config()) ||
      !readJsonMessage(args.pod_config, "pod config", *pod_req.mutable_config())) {
    return 2;
  }
  pod_req.set_runtime_handler(args.runtime);
  *req.mutable_sandbox_config() = pod_req.config();
  Client client(options);
  // Pulling first leaves nothing to undo when the image cannot be had.
  if (args.pull && !pullFor(client, req.config(), req.sandbox_config())) return 1;

  Undo undo;
  int rc = 1;
  auto cleanUp = [&] {
    absl::Status st = undo.run();
    if (!st.ok()) std::cerr << "clean-up failed: " << st.message() << "\n";
    return rc;
  };
  v1::RunPodSandboxResponse pod_resp;
  auto pod_ctx = client.context();
  grpc::Status st = client.runtime().RunPodSandbox(pod_ctx.get(), pod_req, &pod_resp);
  if (!st.ok()) return reportFailure("RunPodSandbox", st);
  const std::string pod_id = pod_resp.pod_sandbox_id();
  undo.arm("pod " + pod_id, [&client, pod_id] {
    v1::RemovePodSandboxRequest r;
    r.set_pod_sandbox_id(pod_id);
    v1::RemovePodSandboxResponse resp;
    auto ctx = client.context();
    return toAbsl("RemovePodSandbox", client.runtime().RemovePodSandbox(ctx.get(), r, &resp));
  });

  req.set_pod_sandbox_id(pod_id);
  auto id = createContainer(client, req, args.pull);
  if (!id) return cleanUp();
  const std::string container_id = *id;
  undo.arm("container " + container_id, [&client, container_id] {
    return toAbsl("RemoveContainer", removeContainer(client, container_id));
  });

  v1::StartContainerRequest start;
  start.set_container_id(container_id);
  v1::StartContainerResponse start_resp;
  auto ctx = client.context();
  st = client.runtime().StartContainer(ctx.get(), start, &start_resp);
  if (!st.ok()) {
    reportFailure("StartContainer", st);
    return cleanUp();
  }
  undo.disarm();
  std::cout << container_id << "\n";
  return 0;
}

}  // namespace

void addContainerCommands(CLI::App& app, const GlobalOptions& options, int& exit_code) {
  auto create_args = std::make_shared<CreateArgs>();
  auto* create = app.add_subcommand("create", "Create a container in a pod from JSON configs");
  create->add_option("pod", create_args->pod_id, "pod id or unique prefix")->required();
  create->add_option("config", create_args->container_config, "container config file (JSON)")
      ->required();
  create->add_option("pod-config", create_args->pod_config, "pod config file (JSON)")->required();
  create->add_flag("--pull", create_args->pull, "pull the image first");
  create->callback([&, create_args] { exit_code = runCreate(options, *create_args); });

  auto start_ids = std::make_shared<std::vector<std::string>>();
  auto* start = app.add_subcommand("start", "Start created containers");
  start->add_option("container", *start_ids, "container ids or unique prefixes")->required();
  start->callback([&, start_ids] { exit_code = runStart(options, *start_ids); });

  auto stop_ids = std::make_shared<std::vector<std::string>>();
  auto stop_timeout = std::make_shared<int64_t>(10);
  auto* stop = app.add_subcommand("stop", "Stop running containers");
  stop->add_option("container", *stop_ids, "container ids or unique prefixes")->required();
  stop->add_option("-t,--timeout", *stop_timeout, "seconds before the container is killed")
      ->capture_default_str();
  stop->callback([&, stop_ids, stop_timeout] {
    exit_code = runStop(options, *stop_ids, *stop_timeout);
  });

  auto rm_ids = std::make_shared<std::vector<std::string>>();
  auto rm_force = std::make_shared<bool>(false);
  auto* rm = app.add_subcommand("rm", "Remove containers");
  rm->add_option("container", *rm_ids, "container ids or unique prefixes")->required();
  rm->add_flag("-f,--force", *rm_force, "kill a running container without a grace period");
  rm->callback([&, rm_ids, rm_force] { exit_code = runRm(options, *rm_ids, *rm_force); });

  auto ps_args = std::make_shared<PsArgs>();
  auto* ps = app.add_subcommand("ps", "List containers (running ones unless -a or --state)");
  ps->add_flag("-a,--all", ps_args->all, "containers in every state");
  ps->add_option("--id", ps_args->id, "id or unique prefix");
  ps->add_option("-p,--pod", ps_args->pod, "only the containers of this pod");
  ps->add_option("--state", ps_args->state, "created, running, exited or unknown");
  ps->add_option("--label", ps_args->labels, "key=value (repeatable)");
  ps->add_option("--name", ps_args->name, "name matches this regular expression");
  ps->add_flag("-q,--quiet", ps_args->quiet, "only ids");
  ps->callback([&, ps_args] { exit_code = runPs(options, *ps_args); });

  auto inspect_ids = std::make_shared<std::vector<std::string>>();
  auto* inspect = app.add_subcommand("inspect", "Show container status and verbose info");
  inspect->add_option("container", *inspect_ids, "container ids or unique prefixes")->required();
  inspect->callback([&, inspect_ids] { exit_code = runInspect(options, *inspect_ids); });

  auto logs_args = std::make_shared<LogsArgs>();
  auto* logs = app.add_subcommand("logs", "Print a container's log");
  logs->add_option("container", logs_args->id, "container id or unique prefix")->required();
  logs->add_flag("-f,--follow", logs_args->follow, "keep printing until the container stops");
  logs->add_option("--tail", logs_args->tail, "only the last N lines (-1: all)")
      ->capture_default_str();
  logs->callback([&, logs_args] { exit_code = runLogs(options, *logs_args); });

  // Everything after the id is the command, options included (`exec ID sh -c 'echo hi'`); a
  // `--` right after the id is dropped.
  auto exec_args = std::make_shared<ExecArgs>();
  auto exec_cmd = std::make_shared<std::vector<std::string>>();
  auto* exec = app.add_subcommand("exec", "Run a command in a running container (ExecSync)");
  exec->positionals_at_end();
  exec->add_option("container", exec_args->id, "container id or unique prefix")->required();
  exec->add_option("command", *exec_cmd, "the command and its arguments")->required();
  exec->add_flag("-s,--sync", exec_args->sync, "run with ExecSync (the default without -i/-t)");
  exec->add_flag("-i,--interactive", exec_args->interactive, "stream stdin (a streaming Exec)");
  exec->add_flag("-t,--tty", exec_args->tty, "allocate a terminal (a streaming Exec)");
  exec->add_option("--transport", exec_args->transport, "spdy (default) or websocket (-i/-t)");
  exec->add_option("--timeout", exec_args->timeout, "seconds before the command is killed (0: none)")
      ->capture_default_str();
  exec->callback([&, exec_args, exec_cmd] {
    if (!exec_cmd->empty() && exec_cmd->front() == "--") exec_cmd->erase(exec_cmd->begin());
    exit_code = runExec(options, *exec_args, *exec_cmd);
  });

  auto run_args = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "Run a container in a new pod (runp, create, start)");
  run->add_option("config", run_args->container_config, "container config file (JSON)")
      ->required();
  run->add_option("pod-config", run_args->pod_config, "pod config file (JSON)")->required();
  run->add_option("--runtime", run_args->runtime, "runtime handler");
  run->add_flag("--pull", run_args->pull, "pull the image first");
  run->callback([&, run_args] { exit_code = runRun(options, *run_args); });
}

}  // namespace berth::cli
