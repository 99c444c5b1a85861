// Starting a program from berthd, a multi-threaded daemon that blocks and ignores signals and
// runs with a raised fd limit: clone (sharing memory until exec, as posix_spawn) and exec, the
// child starting clean.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

#include <string>
#include <vector>

namespace berth {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program's path (no PATH search)
  bool inherit_env = true;        // false: exactly `env`
  std::vector<std::string> env;
  // The child's stdin, stdout and stderr; -1 is /dev/null. The same fd may be given twice.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool new_process_group = false;  // the child leads a process group of its own
  int fd3 = -1;                    // becomes the child's fd 3 (kept open across exec); >= 3
  // Every descriptor above stdio (and fd 3, when given) is closed in the child, also those
  // someone opened without close-on-exec: for long-lived children such as shims.
  bool close_other_fds = false;
};

// Starts argv[0] as posix_spawn would, plus what posix_spawn cannot do: the child starts with an
// empty signal mask, default signal dispositions and the fd limit berthd was started with
// (restoreFdLimitForChild()). Other descriptors are inherited as with posix_spawn (berthd opens
// them close-on-exec). Returns 0 with `*pid` set, or the errno of what failed (clone, or in the
// child dup2, setpgid or exec: ENOENT, EACCES, ...); the failed child is reaped. An exec that
// fails with ETXTBSY (the program still open for writing, for a moment) is tried again for about
// 0.3 s before that errno is returned.
int spawnProcess(const SpawnOptions& options, pid_t* pid);

// What runBounded() saw of a program.
struct RunResult {
  int start_errno = 0;     // != 0: it could not be started (ENOENT, EACCES, ...)
  bool timed_out = false;  // killed (SIGKILL) at the deadline
  int status = 0;          // waitpid status
  std::string output;      // stdout and stderr, interleaved
  bool ok() const {
    return start_errno == 0 && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
};

// Runs argv[0] (spawnProcess) and waits up to `timeout_ms` for it, collecting its output in
// memory (a memfd). Blocks the calling thread.
RunResult runBounded(const std::vector<std::string>& argv, int timeout_ms);

}  // namespace berth
