#include "streaming/ws_transport.h"

namespace berth::streaming {

ClientInput WsCommandTransport::next() {
  while (pending_.empty()) {
    std::string msg;
    WsOpcode op;
    if (!ws_.readMessage(&msg, &op)) return ClientInput{};
    if (op != WsOpcode::kBinary || msg.empty()) continue;
    int channel = static_cast<unsigned char>(msg[0]);
    std::string_view data(msg);
    data.remove_prefix(1);
    if (channel == kStdinChannel && !data.empty()) {
      ClientInput in;
      in.kind = ClientInput::Kind::kStdin;
      in.data = std::string(data);
      pending_.push_back(std::move(in));
    } else if (channel == kResizeChannel) {
      for (auto [w, h] : resize_.feed(data)) {
        ClientInput in;
        in.kind = ClientInput::Kind::kResize;
        in.width = w;
        in.height = h;
        pending_.push_back(std::move(in));
      }
    } else if (v5_ && channel == kWsCloseChannel && data.size() == 1 &&
               static_cast<unsigned char>(data[0]) == kStdinChannel) {
      ClientInput in;
      in.kind = ClientInput::Kind::kStdinEnd;
      pending_.push_back(std::move(in));
    }
  }
  ClientInput in = std::move(pending_.front());
  pending_.pop_front();
  return in;
}

bool WsCommandTransport::open(bool stdout, bool stderr) {
  char channel = stdout ? kStdoutChannel : stderr ? kStderrChannel : kErrorChannel;
  return ws_.writeMessage(std::string_view(&channel, 1));
}

bool WsCommandTransport::send(int channel, std::string_view data) {
  std::string msg;
  msg.reserve(data.size() + 1);
  msg.push_back(static_cast<char>(channel));
  msg.append(data);
  return ws_.writeMessage(msg);
}

void WsCommandTransport::finish() {
  ws_.close();
  ws_.conn().endWrites();
}

}  // namespace berth::streaming
