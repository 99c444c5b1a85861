// A remote command (exec or attach) served to a Kubernetes client: the protocol-independent
// part. A transport (WebSocket or SPDY) turns the client's frames into ClientInput and sends
// output on Kubernetes' channel numbers; serveCommand() moves bytes between it and the
// process's stdio, and ends with the status on the error channel.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "shim/shim_client.h"

namespace berth::streaming {

// Channel numbers of the remotecommand protocols (the WebSocket byte prefix; SPDY streams
// are mapped onto them by their streamtype header).
inline constexpr int kStdinChannel = 0;
inline constexpr int kStdoutChannel = 1;
inline constexpr int kStderrChannel = 2;
inline constexpr int kErrorChannel = 3;
inline constexpr int kResizeChannel = 4;

// How a remote command ended: what its error channel reports.
struct CommandStatus {
  enum class Kind { kSuccess, kExitCode, kFailure };
  Kind kind = Kind::kSuccess;
  int exit_code = 0;             // kExitCode
  std::vector<std::string> cmd;  // kExitCode: named in the message
  std::string message;           // kFailure

  static CommandStatus success() { return {}; }
  static CommandStatus exitCode(std::vector<std::string> cmd, int code);
  static CommandStatus failure(std::string message);
  // The metav1.Status JSON (SPDY, and WebSocket from v4 on).
  std::string json() const;
  // The plain text of the protocols before v4: its message on failure, "" on success (which
  // they do not report).
  std::string text() const;
};

struct ClientInput {
  enum class Kind { kStdin, kStdinEnd, kResize, kGone };
  Kind kind = Kind::kGone;
  std::string data;  // kStdin
  uint16_t width = 0, height = 0;  // kResize
};

class CommandTransport {
 public:
  virtual ~CommandTransport() = default;
  // Blocks for the client's next input; kGone when it left or finish() was called. One thread.
  virtual ClientInput next() = 0;
  // Output on a channel; false when the client is gone. Any thread.
  virtual bool send(int channel, std::string_view data) = 0;
  // The command's end on the error channel, in the protocol's form (by default the JSON).
  virtual void sendStatus(const CommandStatus& status) { send(kErrorChannel, status.json()); }
  // No more output on a channel.
  virtual void closeChannel(int channel) = 0;
  // Ends the connection after the last output.
  virtual void finish() = 0;
};

// Pulls terminal sizes out of the resize channel's bytes: JSON objects {"Width":W,"Height":H},
// one after another, possibly split across frames.
class ResizeDecoder {
 public:
  // Appends bytes; returns the sizes completed by them (malformed objects are skipped).
  std::vector<std::pair<uint16_t, uint16_t>> feed(std::string_view bytes);

 private:
  std::string buf_;
};

// Kubernetes Status objects (metav1.Status JSON) written on the error channel.
std::string successStatus();
std::string exitCodeStatus(const std::vector<std::string>& cmd, int exit_code);
std::string failureStatus(std::string_view message);

struct CommandIo {
  shim::StdioFds* fds = nullptr;
  shim::StreamedProcess* process = nullptr;  // exec; nullptr for attach
  std::vector<std::string> cmd;              // exec: for the exit status message
  std::function<void()> on_stdin_end;        // attach: the client closed its stdin
  int cancel_fd = -1;  // readable once the server stops: the session ends as if the client left
};

// Serves until the command is over (exec: it exited and its output is drained; attach: the
// container's output ended) or the client left. On the client leaving, returns at once; the
// caller then destroys the process, which kills it.
void serveCommand(CommandTransport& transport, CommandIo io);

// Sets a terminal's size.
absl::Status resizeTerminal(int fd, uint16_t width, uint16_t height);

}  // namespace berth::streaming
