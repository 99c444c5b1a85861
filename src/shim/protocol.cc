// Frame encoding/decoding, blocking socket I/O with deadlines, and JSON envelope helpers for
// the berth-shim protocol.
#include "shim/protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::shim {

Outcome Outcome::fromErrno(int err, std::string_view context) {
  Code code = Code::kInternal;
  switch (err) {
    case ENOENT:
    case ESRCH:
      code = Code::kNotFound;
      break;
    case EEXIST:
      code = Code::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
      code = Code::kPermissionDenied;
      break;
    case EINVAL:
    case ENAMETOOLONG:
      code = Code::kInvalidArgument;
      break;
    case EBUSY:
    case EAGAIN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  return {code, std::move(msg)};
}

Outcome encodeFrame(const Json& body, std::string* out, size_t max_size) {
  std::string text = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > max_size) {
    return Outcome::error(Code::kResourceExhausted, "frame of " + std::to_string(text.size()) +
                                                        " bytes exceeds the " +
                                                        std::to_string(max_size) + "-byte limit");
  }
  auto n = static_cast<uint32_t>(text.size());
  out->clear();
  out->reserve(kFrameHeaderSize + text.size());
  out->push_back(static_cast<char>((n >> 24) & 0xff));
  out->push_back(static_cast<char>((n >> 16) & 0xff));
  out->push_back(static_cast<char>((n >> 8) & 0xff));
  out->push_back(static_cast<char>(n & 0xff));
  out->append(text);
  return Outcome::success();
}

Outcome FrameReader::next(std::string* body) {
  size_t avail = buf_.size() - off_;
  if (avail < kFrameHeaderSize) return Outcome::error(Code::kUnavailable, "");
  auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + off_);
  size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | size_t{p[3]};
  if (n > max_size_) {
    return Outcome::error(Code::kResourceExhausted, "frame of " + std::to_string(n) +
                                                        " bytes exceeds the " +
                                                        std::to_string(max_size_) + "-byte limit");
  }
  if (avail < kFrameHeaderSize + n) return Outcome::error(Code::kUnavailable, "");
  body->assign(buf_, off_ + kFrameHeaderSize, n);
  off_ += kFrameHeaderSize + n;
  // Compact once the consumed prefix dominates, so the buffer does not grow without bound.
  if (off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  } else if (off_ > 4096 && off_ * 2 > buf_.size()) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  return Outcome::success();
}

Outcome parseObject(std::string_view text, Json* out) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Outcome::error(Code::kInvalidArgument, "frame is not valid JSON");
  if (!j.is_object()) return Outcome::error(Code::kInvalidArgument, "frame is not a JSON object");
  *out = std::move(j);
  return Outcome::success();
}

int64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

int64_t realtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

namespace {

// Waits until `fd` is ready for `events`; kDeadlineExceeded when the deadline passes.
Outcome waitReady(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int timeout = -1;
    if (deadline_ms >= 0) {
      int64_t left = deadline_ms - monotonicMs();
      if (left <= 0) return Outcome::error(Code::kDeadlineExceeded, "timed out");
      timeout = static_cast<int>(left > 60000 ? 60000 : left);
    }
    pollfd pfd{fd, events, 0};
    int r = ::poll(&pfd, 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Outcome::fromErrno(errno, "poll");
    }
    if (r > 0) return Outcome::success();
  }
}

}  // namespace

Outcome writeAll(int fd, std::string_view data, int64_t deadline_ms) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Outcome ready = waitReady(fd, POLLOUT, deadline_ms);
      if (!ready.ok()) return ready;
      continue;
    }
    Outcome err = Outcome::fromErrno(errno, "send");
    err.code = Code::kUnavailable;
    return err;
  }
  return Outcome::success();
}

Outcome writeFrame(int fd, const Json& body, int64_t deadline_ms) {
  std::string frame;
  Outcome enc = encodeFrame(body, &frame);
  if (!enc.ok()) return enc;
  return writeAll(fd, frame, deadline_ms);
}

namespace {

Outcome readExact(int fd, char* buf, size_t len, int64_t deadline_ms) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::recv(fd, buf + off, len - off, MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return Outcome::error(Code::kUnavailable, "connection closed by peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Outcome ready = waitReady(fd, POLLIN, deadline_ms);
      if (!ready.ok()) return ready;
      continue;
    }
    Outcome err = Outcome::fromErrno(errno, "recv");
    err.code = Code::kUnavailable;
    return err;
  }
  return Outcome::success();
}

}  // namespace

Outcome readFrame(int fd, Json* body, int64_t deadline_ms, size_t max_size) {
  unsigned char hdr[kFrameHeaderSize];
  Outcome r = readExact(fd, reinterpret_cast<char*>(hdr), sizeof hdr, deadline_ms);
  if (!r.ok()) return r;
  size_t n =
      (size_t{hdr[0]} << 24) | (size_t{hdr[1]} << 16) | (size_t{hdr[2]} << 8) | size_t{hdr[3]};
  if (n > max_size) {
    return Outcome::error(Code::kResourceExhausted, "frame of " + std::to_string(n) +
                                                        " bytes exceeds the " +
                                                        std::to_string(max_size) + "-byte limit");
  }
  std::string text(n, '\0');
  r = readExact(fd, text.data(), n, deadline_ms);
  if (!r.ok()) return r;
  return parseObject(text, body);
}

Json makeRequest(uint64_t id, std::string_view op) {
  Json j = Json::object();
  j["v"] = kProtocolVersion;
  j["id"] = id;
  j["op"] = std::string(op);
  return j;
}

Json makeOkReply(uint64_t id) {
  Json j = Json::object();
  j["v"] = kProtocolVersion;
  j["id"] = id;
  j["ok"] = true;
  return j;
}

Json makeErrorReply(uint64_t id, const Outcome& error) {
  Json j = Json::object();
  j["v"] = kProtocolVersion;
  j["id"] = id;
  j["ok"] = false;
  j["code"] = static_cast<int>(error.code == Code::kOk ? Code::kInternal : error.code);
  j["message"] = error.message;
  return j;
}

Outcome checkVersion(const Json& msg) {
  int64_t v = 0;
  if (!getInt(msg, "v", &v)) {
    return Outcome::error(Code::kInvalidArgument,
                          "message has no protocol version \"v\" (this side speaks version " +
                              std::to_string(kProtocolVersion) + ")");
  }
  if (v != kProtocolVersion) {
    return Outcome::error(Code::kInvalidArgument,
                          "protocol version " + std::to_string(v) +
                              " is not supported (this side speaks version " +
                              std::to_string(kProtocolVersion) + ")");
  }
  return Outcome::success();
}

Outcome replyOutcome(const Json& reply) {
  Outcome v = checkVersion(reply);
  if (!v.ok()) return v;
  bool ok = false;
  if (!getBool(reply, "ok", &ok)) return Outcome::error(Code::kInternal, "reply has no \"ok\"");
  if (ok) return Outcome::success();
  int64_t code = static_cast<int64_t>(Code::kInternal);
  getInt(reply, "code", &code);
  if (code <= 0 || code > static_cast<int64_t>(Code::kUnauthenticated)) code = 13;
  std::string message;
  getString(reply, "message", &message);
  return Outcome::error(static_cast<Code>(code), std::move(message));
}

bool getString(const Json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return false;
  *out = it->get_ref<const std::string&>();
  return true;
}

bool getInt(const Json& obj, const char* key, int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

bool getBool(const Json& obj, const char* key, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean()) return false;
  *out = it->get<bool>();
  return true;
}

bool validContainerId(std::string_view id) {
  if (id.empty() || id.size() > 256 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

constexpr char kBase64Chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kBase64Chars[(v >> 18) & 63]);
    out.push_back(kBase64Chars[(v >> 12) & 63]);
    out.push_back(kBase64Chars[(v >> 6) & 63]);
    out.push_back(kBase64Chars[v & 63]);
  }
  size_t left = data.size() - i;
  if (left > 0) {
    uint32_t v = byte(i) << 16;
    if (left == 2) v |= byte(i + 1) << 8;
    out.push_back(kBase64Chars[(v >> 18) & 63]);
    out.push_back(kBase64Chars[(v >> 12) & 63]);
    out.push_back(left == 2 ? kBase64Chars[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool base64Decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  out->reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      int d = 0;
      if (c == '=' && last && k >= 2) {
        ++pad;
      } else {
        if (pad > 0) return false;  // data after padding
        d = base64Value(c);
        if (d < 0) return false;
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out->push_back(static_cast<char>((v >> 16) & 0xff));
    if (pad < 2) out->push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

Json exitToJson(const ExitRecord& rec) {
  Json j = Json::object();
  j["container_id"] = rec.container_id;
  j["pid"] = rec.pid;
  j["exit_code"] = rec.exit_code;
  j["exited_at_ns"] = rec.exited_at_ns;
  j["oom"] = rec.oom;
  j["seq"] = rec.seq;
  return j;
}

Outcome exitFromJson(const Json& obj, ExitRecord* out) {
  int64_t pid = 0, code = 0, at = 0;
  bool oom = false;
  if (!obj.is_object() || !getString(obj, "container_id", &out->container_id) ||
      !getInt(obj, "pid", &pid) || !getInt(obj, "exit_code", &code) ||
      !getInt(obj, "exited_at_ns", &at)) {
    return Outcome::error(Code::kInvalidArgument, "malformed exit record");
  }
  getBool(obj, "oom", &oom);
  int64_t seq = 0;
  getInt(obj, "seq", &seq);  // records of shims before sequence numbers have none
  out->seq = seq > 0 ? static_cast<uint64_t>(seq) : 0;
  out->pid = static_cast<int>(pid);
  out->exit_code = static_cast<int>(code);
  out->exited_at_ns = at;
  out->oom = oom;
  return Outcome::success();
}

}  // namespace berth::shim
