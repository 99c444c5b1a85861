// berth-shim: the per-pod monitor process. Parses its arguments, daemonizes (before any thread
// exists), becomes a child subreaper, signals readiness to its launcher and runs the Server.
//
//   berth-shim --id POD_ID --dir DIR --runtime RUNTIME_PATH --runtime-root ROOT
//              [--exec runtime|monitor] [--log-level L] [--ready-fd N] [--foreground]
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "common/build_info.h"
#include "shim/server.h"
#include "shim/shim_log.h"

namespace berth::shim {
namespace {

struct Args {
  ServerOptions server;
  std::string log_level = "info";
  int ready_fd = -1;
  bool foreground = false;
};

void usage() {
  std::fprintf(stderr,
               "usage: berth-shim --id POD_ID --dir DIR --runtime RUNTIME_PATH "
               "--runtime-root ROOT [--exec runtime|monitor] [--log-level L] [--ready-fd N] "
               "[--foreground]\n");
}

bool parseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--version" || a == "-v") {
      std::printf("berth-shim %s\n", kVersion);
      std::exit(0);
    }
    if (a == "--foreground") {
      args->foreground = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "berth-shim: %s needs a value\n", argv[i]);
      return false;
    }
    std::string v = argv[++i];
    if (a == "--id") {
      args->server.pod_id = v;
    } else if (a == "--dir") {
      args->server.dir = v;
    } else if (a == "--runtime") {
      args->server.runtime_path = v;
    } else if (a == "--runtime-root") {
      args->server.runtime_root = v;
    } else if (a == "--exec") {
      if (v != "runtime" && v != "monitor") {
        std::fprintf(stderr, "berth-shim: --exec must be runtime or monitor\n");
        return false;
      }
      args->server.exec_in_monitor = v == "monitor";
    } else if (a == "--log-level") {
      args->log_level = v;
    } else if (a == "--ready-fd") {
      char* end = nullptr;
      long fd = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || fd < 0 || fd > 65535) {
        std::fprintf(stderr, "berth-shim: bad --ready-fd %s\n", v.c_str());
        return false;
      }
      args->ready_fd = static_cast<int>(fd);
    } else {
      std::fprintf(stderr, "berth-shim: unknown option %s\n", argv[i - 1]);
      return false;
    }
  }
  const ServerOptions& s = args->server;
  if (s.pod_id.empty() || s.dir.empty() || s.runtime_path.empty() || s.runtime_root.empty()) {
    std::fprintf(stderr, "berth-shim: --id, --dir, --runtime and --runtime-root are required\n");
    return false;
  }
  if (s.dir.front() != '/' || s.runtime_root.front() != '/') {
    std::fprintf(stderr, "berth-shim: --dir and --runtime-root must be absolute paths\n");
    return false;
  }
  if (!setLogLevel(args->log_level)) {
    std::fprintf(stderr, "berth-shim: bad --log-level %s\n", args->log_level.c_str());
    return false;
  }
  return true;
}

// Leaves the launcher's process group and session: fork (the launcher reaps the parent at
// once), setsid, chdir /, stdin/stdout to /dev/null, stderr to the log file.
bool daemonize(int log_fd, bool foreground) {
  if (!foreground) {
    pid_t pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "berth-shim: fork: %s\n", std::strerror(errno));
      return false;
    }
    if (pid > 0) ::_exit(0);
    if (::setsid() < 0) {
      std::fprintf(stderr, "berth-shim: setsid: %s\n", std::strerror(errno));
      return false;
    }
  }
  if (::chdir("/") != 0) return false;
  ::umask(022);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return false;
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(null_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  ::close(null_fd);
  ::close(log_fd);
  return true;
}

}  // namespace
}  // namespace berth::shim

int main(int argc, char** argv) {
  using namespace berth::shim;
  Args args;
  if (!parseArgs(argc, argv, &args)) {
    usage();
    return 2;
  }
  setLogPodId(args.server.pod_id);
  // The runtime would act on a systemd notify socket inherited from berthd's unit.
  ::unsetenv("NOTIFY_SOCKET");
  if (args.ready_fd >= 0) ::fcntl(args.ready_fd, F_SETFD, FD_CLOEXEC);
  if (::mkdir(args.server.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "berth-shim: create %s: %s\n", args.server.dir.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::string log_path = args.server.dir + "/shim.log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    std::fprintf(stderr, "berth-shim: open %s: %s\n", log_path.c_str(), std::strerror(errno));
    return 1;
  }
  if (!daemonize(log_fd, args.foreground)) return 1;
  SHIM_LOG_INFO("berth-shim %s starting for pod %s in %s", berth::kVersion,
                args.server.pod_id.c_str(), args.server.dir.c_str());

  // Orphaned container processes (a container init once `runtime create` has exited) are
  // reparented to us, so that we can reap them and record their exit.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    SHIM_LOG_ERROR("prctl(PR_SET_CHILD_SUBREAPER): %s", std::strerror(errno));
    return 1;
  }
  Server server(args.server);
  Outcome r = server.init();
  if (!r.ok()) {
    SHIM_LOG_ERROR("start-up failed: %s", r.message.c_str());
    return 1;  // the launcher sees the ready pipe close without a byte
  }
  if (args.ready_fd >= 0) {
    ssize_t n = ::write(args.ready_fd, "R", 1);
    (void)n;
    ::close(args.ready_fd);
  }
  return server.run();
}
