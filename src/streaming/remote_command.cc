#include "streaming/remote_command.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace berth::streaming {
namespace {

using Json = nlohmann::json;

spdlog::logger& log() {
  static auto l = logging::get("streaming");
  return *l;
}

// After the process exited, its output gets this long to reach end-of-file (a background
// child may hold it open).
constexpr absl::Duration kDrainAfterExit = absl::Seconds(2);
constexpr size_t kReadChunk = 32 * 1024;

// A pipe used as an event: readable once signalled.
struct Event {
  UniqueFd r, w;
  Event() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
      r.reset(p[0]);
      w.reset(p[1]);
    }
  }
  void signal() {
    char c = 1;
    (void)!::write(w.get(), &c, 1);
  }
};

int pollMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

// Writes all of `data` to a pipe or terminal that may be non-blocking; gives up when `stop`
// becomes readable or the reader is gone.
bool writeInput(int fd, std::string_view data, int stop, int cancel) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p[3] = {{fd, POLLOUT, 0}, {stop, POLLIN, 0}, {cancel, POLLIN, 0}};
      if (::poll(p, 3, -1) < 0 && errno != EINTR) return false;
      if (p[1].revents != 0 || p[2].revents != 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

std::vector<std::pair<uint16_t, uint16_t>> ResizeDecoder::feed(std::string_view bytes) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  buf_.append(bytes);
  if (buf_.size() > (64u << 10)) buf_.clear();  // nobody sends sizes that large
  for (;;) {
    size_t start = buf_.find('{');
    if (start == std::string::npos) {
      buf_.clear();
      return out;
    }
    int depth = 0;
    bool in_string = false, escaped = false;
    size_t end = std::string::npos;
    for (size_t i = start; i < buf_.size(); ++i) {
      char c = buf_[i];
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') in_string = true;
      if (c == '{') ++depth;
      if (c == '}' && --depth == 0) {
        end = i;
        break;
      }
    }
    if (end == std::string::npos) {
      buf_.erase(0, start);
      return out;
    }
    Json j = Json::parse(buf_.substr(start, end - start + 1), nullptr, false);
    buf_.erase(0, end + 1);
    if (!j.is_object()) continue;
    auto w = j.find("Width");
    auto h = j.find("Height");
    if (w == j.end() || h == j.end() || !w->is_number_unsigned() || !h->is_number_unsigned()) {
      continue;
    }
    out.emplace_back(static_cast<uint16_t>(std::min<uint64_t>(w->get<uint64_t>(), 0xffff)),
                     static_cast<uint16_t>(std::min<uint64_t>(h->get<uint64_t>(), 0xffff)));
  }
}

std::string successStatus() { return R"({"metadata":{},"status":"Success"})"; }

namespace {
std::string exitCodeMessage(const std::vector<std::string>& cmd, int exit_code) {
  return absl::StrCat("command terminated with non-zero exit code: error executing command [",
                      absl::StrJoin(cmd, " "), "], exit code ", exit_code);
}
}  // namespace

std::string exitCodeStatus(const std::vector<std::string>& cmd, int exit_code) {
  Json j = Json::object();
  j["metadata"] = Json::object();
  j["status"] = "Failure";
  j["message"] = exitCodeMessage(cmd, exit_code);
  j["reason"] = "NonZeroExitCode";
  Json cause = Json::object();
  cause["reason"] = "ExitCode";
  cause["message"] = std::to_string(exit_code);
  j["details"] = Json::object();
  j["details"]["causes"] = Json::array({cause});
  return j.dump();
}

std::string failureStatus(std::string_view message) {
  Json j = Json::object();
  j["metadata"] = Json::object();
  j["status"] = "Failure";
  j["message"] = std::string(message);
  return j.dump();
}

CommandStatus CommandStatus::exitCode(std::vector<std::string> cmd, int code) {
  CommandStatus s;
  s.kind = Kind::kExitCode;
  s.cmd = std::move(cmd);
  s.exit_code = code;
  return s;
}

CommandStatus CommandStatus::failure(std::string message) {
  CommandStatus s;
  s.kind = Kind::kFailure;
  s.message = std::move(message);
  return s;
}

std::string CommandStatus::json() const {
  switch (kind) {
    case Kind::kSuccess:
      return successStatus();
    case Kind::kExitCode:
      return exitCodeStatus(cmd, exit_code);
    case Kind::kFailure:
      break;
  }
  return failureStatus(message);
}

std::string CommandStatus::text() const {
  switch (kind) {
    case Kind::kSuccess:
      return "";
    case Kind::kExitCode:
      return exitCodeMessage(cmd, exit_code);
    case Kind::kFailure:
      break;
  }
  return message;
}

absl::Status resizeTerminal(int fd, uint16_t width, uint16_t height) {
  winsize ws{};
  ws.ws_col = width;
  ws.ws_row = height;
  if (::ioctl(fd, TIOCSWINSZ, &ws) != 0) return lastErrnoStatus("resize the terminal");
  return absl::OkStatus();
}

void serveCommand(CommandTransport& t, CommandIo io) {
  shim::StdioFds& fds = *io.fds;
  Event client_gone, pump_done;
  // The terminal (tty exec: stdout; attach to a tty container: pty) is where sizes go.
  int terminal = fds.pty.valid() ? fds.pty.get() : (fds.tty ? fds.stdout.get() : -1);
  int stdin_fd = fds.stdin.valid() ? fds.stdin.get() : (fds.tty && io.process ? fds.stdout.get() : -1);

  std::thread pump([&] {
    int outs[2] = {fds.stdout.valid() ? fds.stdout.get() : -1,
                   fds.stderr.valid() ? fds.stderr.get() : -1};
    bool open[2] = {outs[0] >= 0, outs[1] >= 0};
    bool exited = io.process == nullptr;  // attach: the output's end is the end
    int exit_code = 0;
    absl::Time drain_deadline = absl::InfiniteFuture();
    std::string buf(kReadChunk, '\0');
    bool aborted = false;
    while (!aborted && (open[0] || open[1]) && absl::Now() < drain_deadline) {
      pollfd p[5];
      int idx[5];
      int n = 0;
      for (int s = 0; s < 2; ++s) {
        if (!open[s]) continue;
        p[n] = {outs[s], POLLIN, 0};
        idx[n++] = s;
      }
      if (!exited && io.process != nullptr) {
        p[n] = {io.process->notifyFd(), POLLIN, 0};
        idx[n++] = 2;
      }
      p[n] = {client_gone.r.get(), POLLIN, 0};
      idx[n++] = 3;
      p[n] = {io.cancel_fd, POLLIN, 0};  // a negative fd is skipped by poll
      idx[n++] = 3;
      int r = ::poll(p, static_cast<nfds_t>(n), pollMs(drain_deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) break;
      for (int i = 0; i < n && !aborted; ++i) {
        if (p[i].revents == 0) continue;
        int what = idx[i];
        if (what == 3) {
          aborted = true;
        } else if (what == 2) {
          auto code = io.process->exitCode(absl::Seconds(5));
          exited = true;
          exit_code = code.ok() ? *code : -1;
          if (!code.ok()) log().warn("exec exit unknown: {}", code.status().ToString());
          drain_deadline = absl::Now() + kDrainAfterExit;
        } else {
          ssize_t got = ::read(outs[what], buf.data(), buf.size());
          if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
          if (got <= 0) {  // end of file, or EIO from a terminal whose process is gone
            open[what] = false;
            t.closeChannel(what == 0 ? kStdoutChannel : kStderrChannel);
            continue;
          }
          if (!t.send(what == 0 ? kStdoutChannel : kStderrChannel,
                      std::string_view(buf.data(), static_cast<size_t>(got)))) {
            aborted = true;
          }
        }
      }
    }
    if (!aborted && !exited) {
      // The output is closed but the process runs on: wait for its exit (or the client to go).
      pollfd p[3] = {{io.process->notifyFd(), POLLIN, 0},
                     {client_gone.r.get(), POLLIN, 0},
                     {io.cancel_fd, POLLIN, 0}};
      while (::poll(p, 3, -1) < 0 && errno == EINTR) {
      }
      if (p[1].revents != 0 || p[2].revents != 0) {
        aborted = true;
      } else {
        auto code = io.process->exitCode(absl::Seconds(5));
        exit_code = code.ok() ? *code : -1;
      }
    }
    if (!aborted) {
      CommandStatus status;
      if (exit_code < 0) {
        status = CommandStatus::failure("the exit code of the command could not be read");
      } else if (exit_code > 0) {
        status = CommandStatus::exitCode(io.cmd, exit_code);
      }
      t.sendStatus(status);
      t.closeChannel(kErrorChannel);
      t.finish();
    }
    pump_done.signal();
  });

  for (;;) {
    ClientInput in = t.next();
    if (in.kind == ClientInput::Kind::kGone) break;
    if (in.kind == ClientInput::Kind::kStdin) {
      if (stdin_fd >= 0 && !writeInput(stdin_fd, in.data, pump_done.r.get(), io.cancel_fd)) {
        if (fds.stdin.valid() && !fds.tty) fds.stdin.reset();
        stdin_fd = -1;
      }
    } else if (in.kind == ClientInput::Kind::kStdinEnd) {
      // A pipe gets its end of file; a terminal has none to give.
      if (fds.stdin.valid() && !fds.tty) {
        fds.stdin.reset();
        stdin_fd = -1;
      }
      if (io.on_stdin_end) io.on_stdin_end();
    } else if (in.kind == ClientInput::Kind::kResize && terminal >= 0) {
      absl::Status st = resizeTerminal(terminal, in.width, in.height);
      if (!st.ok()) log().debug("{}", st.ToString());
    }
  }
  client_gone.signal();
  pump.join();
}

}  // namespace berth::streaming
