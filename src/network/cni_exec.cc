// Running one CNI plugin: spawned with the config on stdin and an exact environment,
// stdout and stderr collected with poll, a deadline enforced with SIGKILL, errors mapped.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/spawn.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "network/cni_internal.h"

namespace berth::network::cni_internal {
namespace {

using nlohmann::json;

constexpr size_t kMaxStdout = 16 << 20;   // a result is a few KiB; more is kept out of memory
constexpr size_t kStderrKeep = 64 << 10;  // only the tail of stderr is kept
constexpr size_t kStderrInError = 1024;   // and less of it goes into an error message
// After the plugin exits, how long we still read output held open by something it started.
constexpr absl::Duration kDrainAfterExit = absl::Seconds(2);

struct ChildRun {
  int wait_status = 0;
  bool timed_out = false;
  std::string out, err;
};

std::string describeWait(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

std::string tail(absl::string_view text, size_t n) {
  text = absl::StripAsciiWhitespace(text);
  if (text.size() <= n) return std::string(text);
  return absl::StrCat("...", text.substr(text.size() - n));
}

// The config goes in a memfd: writing it cannot block on a plugin that does not read, nor raise
// SIGPIPE on one that exits early.
absl::StatusOr<UniqueFd> configFd(const std::string& config) {
  UniqueFd fd(::memfd_create("cni-config", MFD_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus("memfd_create for plugin config");
  size_t done = 0;
  while (done < config.size()) {
    ssize_t n = ::write(fd.get(), config.data() + done, config.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lastErrnoStatus("write plugin config");
    done += static_cast<size_t>(n);
  }
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return lastErrnoStatus("rewind plugin config");
  return fd;
}

absl::Status outputPipe(UniqueFd* read_end, UniqueFd* write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return lastErrnoStatus("pipe for plugin output");
  read_end->reset(p[0]);
  write_end->reset(p[1]);
  if (::fcntl(p[0], F_SETFL, O_NONBLOCK) != 0)
    return lastErrnoStatus("set plugin pipe non-blocking");
  return absl::OkStatus();
}

// Reads what is available; closes `fd` at EOF or on error.
void drain(UniqueFd* fd, std::string* into, bool keep_tail, size_t cap) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      fd->reset();
      return;
    }
    if (keep_tail) {
      into->append(buf, static_cast<size_t>(n));
      if (into->size() > 2 * cap) into->erase(0, into->size() - cap);
    } else if (into->size() < cap) {
      into->append(buf, std::min(static_cast<size_t>(n), cap - into->size()));
    }
  }
}

pid_t spawn(const PluginCall& call, int in_fd, int out_fd, int err_fd, int* spawn_errno) {
  // The daemon blocks and ignores signals (SIGTERM for sigwait, SIGPIPE) and runs with a raised
  // fd limit; the plugin starts clean (spawnProcess), in a process group of its own so that a
  // timeout kills what it started too.
  SpawnOptions options{.argv = {call.binary},
                       .inherit_env = false,
                       .env = call.env,
                       .stdin_fd = in_fd,
                       .stdout_fd = out_fd,
                       .stderr_fd = err_fd,
                       .new_process_group = true};
  pid_t pid = -1;
  *spawn_errno = spawnProcess(options, &pid);
  return *spawn_errno == 0 ? pid : -1;
}

int pollTimeoutMs(absl::Time until, absl::Time now, bool tick) {
  int64_t ms = absl::ToInt64Milliseconds(until - now) + 1;
  ms = std::clamp<int64_t>(ms, 0, tick ? 50 : 60000);
  return static_cast<int>(ms);
}

absl::StatusOr<ChildRun> runChild(const PluginCall& call) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd in, configFd(call.config));
  UniqueFd out_r, out_w, err_r, err_w;
  BERTH_RETURN_IF_ERROR(outputPipe(&out_r, &out_w));
  BERTH_RETURN_IF_ERROR(outputPipe(&err_r, &err_w));

  int spawn_errno = 0;
  pid_t pid = spawn(call, in.get(), out_w.get(), err_w.get(), &spawn_errno);
  in.reset();
  out_w.reset();
  err_w.reset();
  if (pid < 0) {
    return errnoStatus(spawn_errno, absl::StrCat("start plugin \"", call.type, "\" (network \"",
                                                 call.network, "\") at ", call.binary));
  }
  // Wakes poll when the plugin exits; without it (old kernels) we look every 50 ms.
  UniqueFd exit_fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  ChildRun run;
  const absl::Time deadline = absl::Now() + call.timeout;
  absl::Time drain_deadline = absl::InfiniteFuture();
  bool exited = false;
  for (;;) {
    if (!exited) {
      pid_t w = ::waitpid(pid, &run.wait_status, WNOHANG);
      if (w < 0 && errno == ECHILD) {
        // Someone else reaped it: its pid may already be reused, so it is not ours to kill.
        return absl::InternalError(
            absl::StrCat("plugin \"", call.type, "\" (pid ", pid, ") was reaped by someone else"));
      }
      if (w == pid) {
        exited = true;
        drain_deadline = absl::Now() + kDrainAfterExit;
      }
    }
    if (exited && !out_r.valid() && !err_r.valid()) break;
    absl::Time now = absl::Now();
    if (exited && now >= drain_deadline) break;
    if (!exited && now >= deadline) {
      // Before reaping: the group id cannot be reused while the leader is a zombie.
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &run.wait_status, 0) < 0 && errno == EINTR) {
      }
      run.timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    if (out_r.valid()) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[n++] = {err_r.get(), POLLIN, 0};
    if (!exited && exit_fd.valid()) fds[n++] = {exit_fd.get(), POLLIN, 0};
    bool tick = !exited && !exit_fd.valid();
    int rc = ::poll(fds, static_cast<nfds_t>(n),
                    pollTimeoutMs(exited ? drain_deadline : deadline, now, tick));
    if (rc < 0 && errno != EINTR) {
      absl::Status st = lastErrnoStatus("poll plugin output");
      if (!exited) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      return st;
    }
    if (out_r.valid()) drain(&out_r, &run.out, false, kMaxStdout);
    if (err_r.valid()) drain(&err_r, &run.err, true, kStderrKeep);
  }
  if (run.err.size() > kStderrKeep) run.err.erase(0, run.err.size() - kStderrKeep);
  return run;
}

std::string pluginName(const PluginCall& call) {
  return absl::StrCat("plugin \"", call.type, "\" (network \"", call.network, "\")");
}

}  // namespace

absl::Status pluginErrorStatus(const PluginCall& call, const json& error) {
  int64_t code = 0;
  if (auto c = error.find("code"); c != error.end() && c->is_number_integer()) {
    code = c->get<int64_t>();
  }
  auto text = [&error](const char* key) {
    auto it = error.find(key);
    return it != error.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string details = text("details");
  std::string message = absl::StrCat(pluginName(call), " failed: ", text("msg"), " (code ", code,
                                     ")", details.empty() ? "" : ": ", details);
  switch (code) {
    case 4:  // invalid necessary environment variables
    case 6:  // failed to decode content
    case 7:  // invalid network config
      return absl::InvalidArgumentError(message);
    case 11:  // try again later
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<json> runPlugin(const PluginCall& call) {
  auto log = logging::get("cni");
  BERTH_ASSIGN_OR_RETURN(ChildRun run, runChild(call));
  if (run.timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(pluginName(call), " ", call.command, " timed out after ",
                     absl::FormatDuration(call.timeout), " and was killed"));
  }
  absl::string_view out_text = absl::StripAsciiWhitespace(run.out);
  // Nesting is limited before parsing: a result is later copied and dumped, both recursive.
  json out = json(nullptr);
  if (!out_text.empty()) {
    auto parsed = parseUntrustedJson(out_text, "result", kMaxStdout);
    out = parsed.ok() ? *std::move(parsed) : json(json::value_t::discarded);
  }
  bool success = WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0;
  if (success) {
    if (!run.err.empty()) {
      log->debug("pod {}: {} {} stderr: {}", call.container_id, pluginName(call), call.command,
                 tail(run.err, kStderrKeep));
    }
    if (out.is_discarded()) {
      return absl::InternalError(absl::StrCat(pluginName(call), " ", call.command,
                                              " printed invalid JSON: ", tail(out_text, 512)));
    }
    return out;
  }
  if (out.is_object() && (out.contains("code") || out.contains("msg"))) {
    return pluginErrorStatus(call, out);
  }
  // No CNI error on stdout: say how it ended, with what it printed last.
  std::string detail = tail(run.err, kStderrInError);
  if (detail.empty()) detail = tail(out_text, kStderrInError);
  return absl::InternalError(absl::StrCat(pluginName(call),
                                          " failed: ", describeWait(run.wait_status),
                                          detail.empty() ? "" : ": ", detail));
}

}  // namespace berth::network::cni_internal
