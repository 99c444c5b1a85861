// berthd: the berth CRI daemon.
#include <grpc/support/log.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "CLI/CLI.hpp"
#include "common/build_info.h"
#include "common/fd_limit.h"
#include "common/logging.h"
#include "daemon/config.h"
#include "daemon/config_check.h"
#include "daemon/daemon.h"
#include "network/cni.h"

namespace {

constexpr const char* kDefaultConfigPath = "/etc/berth/config.toml";

int fail(const absl::Status& status) {
  std::fprintf(stderr, "berthd: %s\n", std::string(status.message()).c_str());
  return 1;
}

// gRPC's own messages go through berthd's logger: same format, same escaping.
void grpcLog(gpr_log_func_args* args) {
  static const auto log = berth::logging::get("grpc");
  spdlog::level::level_enum level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = spdlog::level::info;
  log->log(level, "{}:{}: {}", args->file, args->line, args->message);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berthd: a container runtime serving the Kubernetes CRI (runtime.v1)"};
  std::string config_path;
  bool print_default = false;
  bool show_version = false;
  std::string log_level;
  app.add_option("-c,--config", config_path, "configuration file (default /etc/berth/config.toml)");
  app.add_flag("--print-default-config", print_default, "print the default configuration");
  bool print_network = false;
  app.add_flag("--print-default-network", print_network,
               "print the built-in CNI network (used when cni.conf_dir has no config)");
  bool check_config = false;
  app.add_flag("--check-config", check_config,
               "check the configuration file (its keys, and every program, folder and file it "
               "names) and exit: 0 when berthd could start with it, 1 with the problems listed");
  app.add_flag("-v,--version", show_version, "print the version");
  app.add_option("--log-level", log_level, "override log.level");
  CLI11_PARSE(app, argc, argv);

  if (show_version) {
    std::printf("berthd %s (CRI %s)\n", berth::kVersion, berth::kCriApiVersion);
    return 0;
  }
  if (print_default) {
    std::fputs(berth::daemon::renderConfig(berth::daemon::Config{}).c_str(), stdout);
    return 0;
  }

  bool explicit_config = !config_path.empty();
  if (print_network) {
    auto c = berth::daemon::loadConfig(explicit_config ? config_path : kDefaultConfigPath,
                                       explicit_config);
    if (!c.ok()) return fail(c.status());
    std::puts(berth::network::CniManager::defaultConfList(c->cni.default_bridge,
                                                          {c->cni.default_subnet})
                  .dump(2)
                  .c_str());
    return 0;
  }
  auto config = berth::daemon::loadConfig(explicit_config ? config_path : kDefaultConfigPath,
                                          explicit_config);
  if (check_config) {
    const std::string name = explicit_config ? config_path : kDefaultConfigPath;
    if (!config.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(),
                   std::string(config.status().message()).c_str());
      return 1;
    }
    berth::daemon::ConfigCheck check = berth::daemon::checkConfig(*config);
    for (const std::string& n : check.notes) std::printf("%s: note: %s\n", name.c_str(), n.c_str());
    for (const std::string& p : check.problems) {
      std::fprintf(stderr, "%s: problem: %s\n", name.c_str(), p.c_str());
    }
    if (!check.problems.empty()) return 1;
    std::printf("%s: ok\n", name.c_str());
    return 0;
  }
  if (!config.ok()) return fail(config.status());
  if (!log_level.empty()) {
    config->log.level = log_level;
    config->sources["/log/level"] = "--log-level";
  }
  auto log_status = berth::logging::init(
      config->log.level,
      config->log.format == "json" ? berth::logging::Format::kJson : berth::logging::Format::kText);
  if (!log_status.ok()) return fail(log_status);
  auto log = berth::logging::get("daemon");
  gpr_set_log_function(grpcLog);

  // Before any thread exists: CRI connections, shims and pipes need descriptors. Children get
  // the original limit back (common/spawn.h).
  if (auto limit = berth::raiseFdLimit(); limit.ok()) {
    log->info("open-file limit {} (was {}, hard limit {})", limit->soft, limit->original_soft,
              limit->hard);
  } else {
    log->warn("open-file limit not raised: {}", limit.status().message());
  }

  // Block the shutdown signals before any thread exists; they are taken with sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // reload the configuration
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto daemon = berth::daemon::Daemon::start(*config);
  if (!daemon.ok()) {
    log->error("start-up failed: {}", daemon.status().message());
    return fail(daemon.status());
  }
  int sig = 0;
  for (;;) {
    while (sigwait(&signals, &sig) != 0) {
    }
    if (sig != SIGHUP) break;
    // Re-read the file: a bad one keeps the running configuration, saying why.
    auto next = berth::daemon::loadConfig(explicit_config ? config_path : kDefaultConfigPath,
                                          explicit_config);
    if (next.ok() && !log_level.empty()) {
      next->log.level = log_level;
      next->sources["/log/level"] = "--log-level";
    }
    absl::Status st = next.ok() ? (*daemon)->reload(*next) : next.status();
    if (!st.ok()) log->error("SIGHUP: keeping the running configuration: {}", st.message());
  }
  log->info("received signal {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*daemon)->shutdown();
  daemon->reset();
  log->info("berthd stopped");
  return 0;
}
