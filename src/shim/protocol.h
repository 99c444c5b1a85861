// The berth-shim wire protocol, shared by the shim and the daemon-side client: length-prefixed
// JSON frames on a unix stream socket, request/reply envelopes and status codes.
//
// A frame is a 4-byte big-endian body length followed by one UTF-8 JSON object. Requests carry
// {"v": 1, "id": N, "op": "..."}; replies echo {"v": 1, "id": N} with "ok": true plus the op's
// fields, or "ok": false with "code" (an absl::StatusCode value) and "message". After a
// "subscribe" request the shim pushes {"v": 1, "event": "exit", <exit record>} frames on that
// connection: first every record not yet acknowledged (in seq order), then each exit as it is
// recorded. A record stays (and is replayed to the next subscriber) until ack_exit. OOM kills
// in a running container's memory cgroup are pushed the same way as {"event": "oom", <record
// with oom true, exited_at_ns the time seen>} (their own seq order, one record per container,
// replayed before the exits) and stay until ack_oom.
//
// Ops (request fields → reply fields): ping → {pid, version, pod_id}; create {container_id, bundle,
// terminal, log_path, max_log_line, stdin, stdin_once} → {pid} (the shim holds every container's
// output, and writes a CRI log only with a log_path); start, kill {signal, all}, delete {force},
// state → {status, pid}; wait → exit record; exits → {exits}; ack_exit {container_id, seq}
// (removes the record; with a seq only that record, not a newer one); ack_oom {container_id,
// seq} (the same for OOM records; seq required); subscribe; reopen_log
// {container_id}; exec {container_id, exec_id, args, env, cwd, user {uid, gid, additional_gids},
// tty, timeout_ms, output_limit} → {exit_code, stdout, stderr (base64), truncated}; exec with
// {stream: true, stdin, tty} → a first reply {started, pid, fds} passing the process's stdio as
// SCM_RIGHTS descriptors named by "fds" ("stdin", "stdout", "stderr", or one "tty"), then a second
// reply {exited, exit_code}; closing that connection kills the process. attach {container_id,
// stdin, stdout, stderr} → {fds ("stdin", "stdout", "stderr", "pty"), tty}: copies of the
// container's output (logged or not) until the connection closes; close_stdin {container_id} →
// {closed} (a stdin_once container's stdin closes); shutdown.
//
// This code deliberately does not depend on Abseil: berth-shim links only libc, libstdc++ and
// this file, to stay small. The client converts Outcome into absl::Status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "nlohmann/json.hpp"

namespace berth::shim {

using Json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;
// Largest frame body either side accepts or sends.
inline constexpr size_t kMaxFrameSize = 16u << 20;
inline constexpr size_t kFrameHeaderSize = 4;
// Exec output: the most either stream may hold, and the largest exec reply (both streams
// base64-encoded plus the envelope), which is the one frame allowed above kMaxFrameSize.
inline constexpr size_t kMaxExecOutput = 16u << 20;
inline constexpr size_t kMaxExecReplySize = 2 * ((kMaxExecOutput + 2) / 3 * 4) + (64u << 10);

// Status codes on the wire; the numbers are absl::StatusCode's (the client checks that).
enum class Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// A status without Abseil: a code and a message naming the object.
struct [[nodiscard]] Outcome {
  Code code = Code::kOk;
  std::string message;

  bool ok() const { return code == Code::kOk; }
  static Outcome success() { return {}; }
  static Outcome error(Code c, std::string msg) { return {c, std::move(msg)}; }
  // Error from errno: `context: strerror(err)`, classified like berth::errnoStatus.
  static Outcome fromErrno(int err, std::string_view context);
};

// Encodes `body` as a frame (header + JSON text). Bodies over `max_size` are rejected.
[[nodiscard]] Outcome encodeFrame(const Json& body, std::string* out,
                                  size_t max_size = kMaxFrameSize);

// Incremental frame decoder for non-blocking readers: feed bytes, take whole frames.
class FrameReader {
 public:
  explicit FrameReader(size_t max_size = kMaxFrameSize) : max_size_(max_size) {}
  void append(const char* data, size_t len) { buf_.append(data, len); }
  // Returns kOk and fills *body when a whole frame is buffered; kUnavailable with an empty
  // message when more bytes are needed; kResourceExhausted for an oversize frame (the stream
  // cannot be resynchronised after that).
  [[nodiscard]] Outcome next(std::string* body);
  bool empty() const { return buf_.size() == off_; }

 private:
  size_t max_size_;
  std::string buf_;
  size_t off_ = 0;
};

// Parses a frame body; it must be a JSON object.
[[nodiscard]] Outcome parseObject(std::string_view text, Json* out);

// Monotonic clock in milliseconds, for deadlines below.
int64_t monotonicMs();
// Wall clock in nanoseconds since the epoch.
int64_t realtimeNs();

// Blocking I/O on a socket with an absolute deadline (monotonicMs(); negative = none).
// Errors: kDeadlineExceeded on timeout, kUnavailable when the peer is gone or the socket fails,
// kResourceExhausted for an oversize frame, kInvalidArgument for a malformed body.
[[nodiscard]] Outcome writeAll(int fd, std::string_view data, int64_t deadline_ms);
[[nodiscard]] Outcome writeFrame(int fd, const Json& body, int64_t deadline_ms);
[[nodiscard]] Outcome readFrame(int fd, Json* body, int64_t deadline_ms,
                                size_t max_size = kMaxFrameSize);

// Envelope helpers.
Json makeRequest(uint64_t id, std::string_view op);
Json makeOkReply(uint64_t id);
Json makeErrorReply(uint64_t id, const Outcome& error);
// Checks "v" of a request or reply; the error names both versions.
[[nodiscard]] Outcome checkVersion(const Json& msg);
// Turns a reply into an Outcome (kOk, or its code and message).
[[nodiscard]] Outcome replyOutcome(const Json& reply);

// Non-throwing field accessors: false when the key is missing or has another type.
bool getString(const Json& obj, const char* key, std::string* out);
bool getInt(const Json& obj, const char* key, int64_t* out);
bool getBool(const Json& obj, const char* key, bool* out);

// Checks a container id before it becomes a file name or a runtime argument: 1-256 of
// [A-Za-z0-9_.+-], not "." or "..".
bool validContainerId(std::string_view id);

// Standard base64 (RFC 4648, with padding), for binary data in JSON strings (exec output).
std::string base64Encode(std::string_view data);
// False for malformed input.
bool base64Decode(std::string_view text, std::string* out);

// An exit record as stored by the shim and reported to the client.
struct ExitRecord {
  std::string container_id;
  int pid = 0;
  int exit_code = 0;
  int64_t exited_at_ns = 0;
  bool oom = false;
  // Order of the shim's exit records, from 1; the daemon acknowledges a record by it.
  uint64_t seq = 0;
};
Json exitToJson(const ExitRecord& rec);
[[nodiscard]] Outcome exitFromJson(const Json& obj, ExitRecord* out);

}  // namespace berth::shim
