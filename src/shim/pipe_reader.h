// The output pipes berth-shim reads in its poll loop (containers' stdout/stderr, exec output):
// non-blocking reads handed to a sink, end-of-file reported once.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace berth::shim {

// Called from berth-shim's single thread only.
class PipeReader {
 public:
  // Receives the bytes read; `eof` is true exactly once, last, with no data (the pipe is closed
  // by then).
  using Sink = std::function<void(std::string_view data, bool eof)>;

  // Takes the read end of a pipe (made non-blocking) and returns its handle (never 0).
  uint64_t add(UniqueFd fd, Sink sink);
  // Reads what is buffered in the pipe now (up to a bound), without blocking, then closes it
  // and reports EOF.
  void drainAndClose(uint64_t handle);
  // Closes the pipe without reading or reporting anything more.
  void close(uint64_t handle);
  bool isOpen(uint64_t handle) const;

  // Appends a pollfd (and its handle) for each open pipe.
  void addPollFds(std::vector<pollfd>* fds, std::vector<uint64_t>* handles) const;
  // Reads a pipe poll() reported ready.
  void onReady(uint64_t handle, short revents);
  // Forgets closed pipes; call outside of sink callbacks.
  void sweep();

 private:
  struct Pipe {
    UniqueFd fd;
    Sink sink;
    bool done = false;
  };
  // Reads what is available, up to a fair share; returns true on EOF or error.
  bool readSome(Pipe& p);
  void finish(Pipe& p);

  uint64_t next_ = 1;
  std::map<uint64_t, Pipe> pipes_;
};

}  // namespace berth::shim
