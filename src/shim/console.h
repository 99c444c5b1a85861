// The console socket through which an OCI runtime hands over a terminal's pty master
// (`--console-socket`), for containers created with a tty and for terminal execs.
#pragma once

#include <string>

#include "common/unique_fd.h"
#include "shim/protocol.h"

namespace berth::shim {

// A listening socket in a fresh directory under /tmp: socket paths are limited to 107 bytes
// and the shim dir may be longer. Both go away with the object.
struct ConsoleSocket {
  std::string dir, path;
  UniqueFd fd;
  ConsoleSocket() = default;
  ConsoleSocket(const ConsoleSocket&) = delete;
  ConsoleSocket& operator=(const ConsoleSocket&) = delete;
  ~ConsoleSocket();
};

[[nodiscard]] Outcome openConsoleSocket(ConsoleSocket* c);

// Accepts the runtime's connection on `listen_fd` and receives the pty master it sent (the
// runtime sends it before its command returns, so this does not wait). The master is
// non-blocking and close-on-exec.
[[nodiscard]] Outcome receivePty(int listen_fd, UniqueFd* master);
// The same on a connected socket (a socketpair's end) over which the master was sent already.
[[nodiscard]] Outcome receivePtyFrom(int conn_fd, UniqueFd* master);
// Sends `master` over the connected socket `conn_fd` as a runtime does (SCM_RIGHTS, payload
// "/dev/ptmx"): what receivePtyFrom reads.
[[nodiscard]] Outcome sendPty(int conn_fd, int master);

}  // namespace berth::shim
