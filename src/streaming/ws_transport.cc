#include "streaming/ws_transport.h"

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace berth::streaming {
namespace {

spdlog::logger& log() {
  static auto l = logging::get("streaming");
  return *l;
}

// Kubernetes' own stream server (kubelet's remotecommand/websocket.go, on apimachinery's
// wsstream) accepts "", channel.k8s.io, base64.channel.k8s.io and their v4 versions; v5 is
// what client-go's WebSocket executor (crictl, kubectl) offers.
constexpr std::array<WsCommandProtocol, 6> kProtocols = {{
    {.name = kWsProtocolV5, .base64 = false, .version = 5},
    {.name = kWsProtocolV4, .base64 = false, .version = 4},
    {.name = kWsProtocolV4Base64, .base64 = true, .version = 4},
    {.name = kWsProtocolV1, .base64 = false, .version = 1},
    {.name = kWsProtocolV1Base64, .base64 = true, .version = 1},
    {.name = "", .base64 = false, .version = 1},
}};

}  // namespace

std::span<const WsCommandProtocol> wsCommandProtocols() { return kProtocols; }

std::optional<WsCommandProtocol> findWsCommandProtocol(std::string_view name) {
  for (const auto& p : kProtocols) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

std::optional<WsCommandProtocol> negotiateWsCommandProtocol(
    const std::vector<std::string>& offered) {
  if (offered.empty()) return findWsCommandProtocol("");
  // The client's order decides, not ours (wsstream's handshake walks the client's list).
  for (const auto& o : offered) {
    if (o.empty()) continue;
    if (auto p = findWsCommandProtocol(o)) return p;
  }
  return std::nullopt;
}

std::string wsCommandProtocolList() {
  std::vector<std::string> names;
  for (const auto& p : kProtocols) {
    if (!p.name.empty()) names.emplace_back(p.name);
  }
  return absl::StrJoin(names, ", ");
}

WsChannelMessage encodeWsChannelMessage(const WsCommandProtocol& protocol, int channel,
                                        std::string_view data) {
  WsChannelMessage m;
  if (!protocol.base64) {
    m.payload.reserve(data.size() + 1);
    m.payload.push_back(static_cast<char>(channel));
    m.payload.append(data);
    return m;
  }
  m.opcode = WsOpcode::kText;
  m.payload.push_back(static_cast<char>('0' + channel));
  m.payload += absl::Base64Escape(absl::string_view(data.data(), data.size()));
  return m;
}

bool decodeWsChannelMessage(const WsCommandProtocol& protocol, std::string_view payload,
                            int* channel, std::string* data) {
  if (payload.empty()) return false;
  auto first = static_cast<unsigned char>(payload[0]);
  payload.remove_prefix(1);
  if (!protocol.base64) {
    *channel = first;
    data->assign(payload);
    return true;
  }
  if (first < '0' || first > '9') return false;
  *channel = first - '0';
  return absl::Base64Unescape(absl::string_view(payload.data(), payload.size()), data);
}

ClientInput WsCommandTransport::next() {
  while (pending_.empty()) {
    std::string msg;
    WsOpcode op;
    if (!ws_.readMessage(&msg, &op)) return ClientInput{};
    if (msg.empty()) continue;
    if (protocol_.closeSignal() && static_cast<unsigned char>(msg[0]) == kWsCloseChannel) {
      // [255, channel]; anything else is a broken client, and ends the session as in
      // wsstream.
      if (msg.size() != 2 || static_cast<unsigned char>(msg[1]) > kResizeChannel) {
        log().info("streaming: a malformed close signal ({} bytes) ends the session", msg.size());
        return ClientInput{};
      }
      if (msg[1] == kStdinChannel) {
        ClientInput in;
        in.kind = ClientInput::Kind::kStdinEnd;
        pending_.push_back(std::move(in));
      }
      continue;
    }
    int channel = 0;
    std::string data;
    if (!decodeWsChannelMessage(protocol_, msg, &channel, &data)) {
      log().debug("streaming: dropped a websocket message that carries no channel data");
      continue;
    }
    if (channel == kStdinChannel && !data.empty()) {
      ClientInput in;
      in.kind = ClientInput::Kind::kStdin;
      in.data = std::move(data);
      pending_.push_back(std::move(in));
    } else if (channel == kResizeChannel) {
      for (auto [w, h] : resize_.feed(data)) {
        ClientInput in;
        in.kind = ClientInput::Kind::kResize;
        in.width = w;
        in.height = h;
        pending_.push_back(std::move(in));
      }
    }
  }
  ClientInput in = std::move(pending_.front());
  pending_.pop_front();
  return in;
}

bool WsCommandTransport::open(bool stdout, bool stderr) {
  int channel = stdout ? kStdoutChannel : stderr ? kStderrChannel : kErrorChannel;
  return send(channel, "");
}

bool WsCommandTransport::send(int channel, std::string_view data) {
  WsChannelMessage m = encodeWsChannelMessage(protocol_, channel, data);
  return ws_.writeMessage(m.payload, m.opcode);
}

void WsCommandTransport::sendStatus(const CommandStatus& status) {
  if (protocol_.statusJson()) {
    send(kErrorChannel, status.json());
    return;
  }
  // Before v4 a success is the absence of an error; kubelet writes nothing.
  std::string text = status.text();
  if (!text.empty()) send(kErrorChannel, text);
}

void WsCommandTransport::finish() {
  ws_.close();
  ws_.conn().endWrites();
}

}  // namespace berth::streaming
