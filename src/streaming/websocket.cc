#include "streaming/websocket.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>

namespace berth::streaming {

std::string wsAcceptKey(std::string_view client_key) {
  std::string text(client_key);
  text += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455's fixed GUID
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string encodeWsFrame(WsOpcode op, std::string_view payload, bool mask, bool fin) {
  std::string f;
  f.reserve(payload.size() + 14);
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | static_cast<uint8_t>(op)));
  uint8_t mask_bit = mask ? 0x80 : 0;
  size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xffff) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((uint64_t{n} >> (8 * i)) & 0xff));
  }
  if (!mask) {
    f.append(payload);
    return f;
  }
  unsigned char key[4];
  RAND_bytes(key, sizeof key);
  f.append(reinterpret_cast<char*>(key), 4);
  size_t start = f.size();
  f.append(payload);
  for (size_t i = 0; i < n; ++i) f[start + i] = static_cast<char>(f[start + i] ^ key[i % 4]);
  return f;
}

absl::Status WsParser::next(WsFrame* frame, bool* got) {
  *got = false;
  if (buf_.size() < 2) return absl::OkStatus();
  auto b = [&](size_t i) { return static_cast<uint8_t>(buf_[i]); };
  if ((b(0) & 0x70) != 0) return absl::InvalidArgumentError("websocket: reserved bits set");
  bool masked = (b(1) & 0x80) != 0;
  uint64_t len = b(1) & 0x7f;
  size_t pos = 2;
  if (len == 126) {
    if (buf_.size() < 4) return absl::OkStatus();
    len = (uint64_t{b(2)} << 8) | b(3);
    pos = 4;
  } else if (len == 127) {
    if (buf_.size() < 10) return absl::OkStatus();
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | b(2 + i);
    pos = 10;
  }
  if (len > max_) return absl::ResourceExhaustedError("websocket: frame too large");
  size_t need = pos + (masked ? 4 : 0) + static_cast<size_t>(len);
  if (buf_.size() < need) return absl::OkStatus();
  frame->fin = (b(0) & 0x80) != 0;
  frame->opcode = static_cast<WsOpcode>(b(0) & 0x0f);
  unsigned char key[4] = {0, 0, 0, 0};
  if (masked) {
    std::memcpy(key, buf_.data() + pos, 4);
    pos += 4;
  }
  frame->payload.assign(buf_, pos, static_cast<size_t>(len));
  if (masked) {
    for (size_t i = 0; i < frame->payload.size(); ++i) {
      frame->payload[i] = static_cast<char>(frame->payload[i] ^ key[i % 4]);
    }
  }
  buf_.erase(0, need);
  *got = true;
  return absl::OkStatus();
}

bool WsConn::readMessage(std::string* message, WsOpcode* opcode) {
  message->clear();
  bool in_message = false;
  std::string chunk;
  for (;;) {
    WsFrame f;
    bool got = false;
    if (!parser_.next(&f, &got).ok()) return false;
    if (!got) {
      if (!conn_.readSome(&chunk)) return false;
      parser_.feed(chunk);
      continue;
    }
    switch (f.opcode) {
      case WsOpcode::kPing:
        writeMessage(f.payload, WsOpcode::kPong);
        continue;
      case WsOpcode::kPong:
        continue;
      case WsOpcode::kClose:
        close();
        return false;
      case WsOpcode::kContinuation:
        if (!in_message) return false;
        message->append(f.payload);
        break;
      case WsOpcode::kText:
      case WsOpcode::kBinary:
        if (in_message) return false;
        in_message = true;
        *opcode = f.opcode;
        *message = std::move(f.payload);
        break;
      default:
        return false;
    }
    if (f.fin) return true;
  }
}

bool WsConn::writeMessage(std::string_view data, WsOpcode op) {
  return conn_.writeAll(encodeWsFrame(op, data, /*mask=*/false));
}

void WsConn::close(std::string_view reason) {
  {
    absl::MutexLock lock(&close_mu_);
    if (close_sent_) return;
    close_sent_ = true;
  }
  std::string body;
  body.push_back(static_cast<char>(1000 >> 8));
  body.push_back(static_cast<char>(1000 & 0xff));
  body.append(reason.substr(0, 120));
  conn_.writeAll(encodeWsFrame(WsOpcode::kClose, body, /*mask=*/false));
}

bool WsTunnel::readSome(std::string* out, size_t) {
  if (!pending_.empty()) {
    out->swap(pending_);
    pending_.clear();
    return true;
  }
  WsOpcode op;
  for (;;) {
    if (!ws_.readMessage(out, &op)) return false;
    if (op == WsOpcode::kBinary && !out->empty()) return true;
  }
}

void WsTunnel::endWrites(int linger_ms) {
  ws_.close();
  ws_.conn().endWrites(linger_ms);
}

}  // namespace berth::streaming
