// Runs OCI runtime commands (runc/crun) for berth-shim without blocking its event loop: a
// command is spawned, and its callback runs when the shim's reaper collects its exit status.
// Keeping every child in one pid table is what stops a waitpid(-1) loop from stealing a
// runtime command's status.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "shim/protocol.h"

namespace berth::shim {

struct RuntimeResult {
  int wait_status = 0;      // as from waitpid
  bool timed_out = false;   // killed by the runner after its deadline
  std::string error_text;   // the runtime's error messages (JSON log "msg"s, or raw stderr)
  std::string stdout_text;  // when RuntimeIo::capture_stdout was set

  bool success() const;
  // "exit status 1", "killed by signal 9", "timed out after ...".
  std::string describe() const;
};

struct RuntimeIo {
  int stdin_fd = -1;            // -1: /dev/null
  int stdout_fd = -1;           // -1: /dev/null (or captured, see below)
  int stderr_fd = -1;           // -1: captured for error_text
  bool capture_stdout = false;  // collect stdout into stdout_text (ignores stdout_fd)
  std::string log_path;         // non-empty: `--log PATH`; error_text is read from it
};

// Called from berth-shim's single thread only.
class RuntimeRunner {
 public:
  using Done = std::function<void(const RuntimeResult&)>;

  RuntimeRunner(std::string runtime_path, std::string runtime_root)
      : runtime_path_(std::move(runtime_path)), runtime_root_(std::move(runtime_root)) {}

  // Starts `RUNTIME --root ROOT --log-format json [--log PATH] ARGS...`; `done` runs from
  // onExit() once the command has exited. `timeout_ms` > 0 kills it with SIGKILL when overdue.
  [[nodiscard]] Outcome start(const std::vector<std::string>& args, const RuntimeIo& io,
                              int64_t timeout_ms, Done done);

  // Offers a reaped child: true if it was a runtime command (its callback has run).
  bool onExit(pid_t pid, int wait_status);

  // Kills overdue commands; returns the poll timeout until the next deadline (-1: none).
  int pollTimeoutMs();

  size_t inFlight() const { return cmds_.size(); }
  const std::string& runtimePath() const { return runtime_path_; }

 private:
  struct Command {
    std::string name;  // e.g. "create", for messages
    UniqueFd stdout_capture;
    UniqueFd stderr_capture;
    std::string log_path;
    int64_t deadline_ms = -1;
    bool timed_out = false;
    Done done;
  };

  std::string runtime_path_;
  std::string runtime_root_;
  std::map<pid_t, Command> cmds_;
};

// Extracts the error messages from a runtime's JSON-lines log (level error/fatal "msg"s); other
// text is returned as it is. The result is trimmed and capped at a few kB.
std::string runtimeErrorText(const std::string& log_text);

}  // namespace berth::shim
