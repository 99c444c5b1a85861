#include "streaming/port_forward.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"

namespace berth::streaming {
namespace {

constexpr size_t kChunk = 32 * 1024;

bool writeSocket(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string forwardError(int32_t port, const std::string& pod, const absl::Status& st) {
  return absl::StrCat("error forwarding port ", port, " to pod ", pod, ": ", st.message());
}

// One forwarded connection over SPDY: a data and an error stream the client opened.
struct SpdyPair {
  uint32_t data_id = 0, error_id = 0;
  int32_t port = -1;
  bool started = false;
  absl::Mutex mu;
  UniqueFd sock ABSL_GUARDED_BY(mu);
  bool dialed ABSL_GUARDED_BY(mu) = false;  // sock is set, or dialing failed
  std::string early ABSL_GUARDED_BY(mu);    // client data that came before the connection
  bool client_fin ABSL_GUARDED_BY(mu) = false;
  std::thread th;
};

void runSpdyPair(SpdyConn& spdy, SpdyPair& p, const PortDialer& dial, const std::string& pod) {
  auto sock = dial(p.port);
  int fd = -1;
  {
    absl::MutexLock lock(&p.mu);
    p.dialed = true;
    if (sock.ok()) {
      p.sock = std::move(sock).value();
      fd = p.sock.get();
      if (!p.early.empty()) writeSocket(fd, p.early);
      std::string().swap(p.early);
      if (p.client_fin) ::shutdown(fd, SHUT_WR);
    }
  }
  if (fd < 0) {
    std::string msg = forwardError(p.port, pod, sock.status());
    logging::get("streaming")->info("{}", msg);
    spdy.send(p.error_id, msg, /*fin=*/true);
    spdy.send(p.data_id, "", /*fin=*/true);
    return;
  }
  std::string buf(kChunk, '\0');
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!spdy.send(p.data_id, std::string_view(buf.data(), static_cast<size_t>(n)))) break;
  }
  spdy.send(p.data_id, "", /*fin=*/true);
  spdy.send(p.error_id, "", /*fin=*/true);
}

}  // namespace

void servePortForwardSpdy(SpdyConn& spdy, const PortDialer& dial, const std::string& pod) {
  std::map<std::string, std::shared_ptr<SpdyPair>> by_request;
  std::map<uint32_t, std::shared_ptr<SpdyPair>> by_data;
  SpdyFrame f;
  while (spdy.readFrame(&f)) {
    if (f.type == SpdyFrameType::kGoAway) break;
    if (f.type == SpdyFrameType::kSynStream) {
      auto type = spdyHeaderValue(f.headers, "streamtype");
      auto port_text = spdyHeaderValue(f.headers, "port");
      int32_t port = 0;
      bool is_data = type && *type == "data";
      bool is_error = type && *type == "error";
      if ((!is_data && !is_error) || !port_text ||
          !absl::SimpleAtoi(std::string(*port_text), &port) || port <= 0 || port > 65535) {
        spdy.reset(f.stream_id, SpdyRstStatus::kRefusedStream);
        continue;
      }
      spdy.reply(f.stream_id);
      // Clients without request ids open the error stream, then the data stream two ids on.
      auto rid = spdyHeaderValue(f.headers, "requestid");
      std::string key = rid ? std::string(*rid)
                            : std::to_string(is_error ? f.stream_id : f.stream_id - 2);
      auto& pair = by_request[key];
      if (!pair) pair = std::make_shared<SpdyPair>();
      pair->port = port;
      if (is_data) {
        pair->data_id = f.stream_id;
        by_data[f.stream_id] = pair;
      } else {
        pair->error_id = f.stream_id;
      }
      if (pair->data_id != 0 && pair->error_id != 0 && !pair->started) {
        pair->started = true;
        SpdyPair* raw = pair.get();
        pair->th = std::thread([&spdy, raw, &dial, &pod] { runSpdyPair(spdy, *raw, dial, pod); });
      }
    } else if (f.type == SpdyFrameType::kData || f.type == SpdyFrameType::kRstStream) {
      auto it = by_data.find(f.stream_id);
      if (it == by_data.end()) continue;
      SpdyPair& p = *it->second;
      absl::MutexLock lock(&p.mu);
      bool fin = f.type == SpdyFrameType::kRstStream || f.fin();
      if (!p.dialed) {
        p.early.append(f.data);
        p.client_fin = p.client_fin || fin;
        continue;
      }
      if (!p.sock.valid()) continue;
      if (!f.data.empty()) writeSocket(p.sock.get(), f.data);
      if (f.type == SpdyFrameType::kRstStream) {
        ::shutdown(p.sock.get(), SHUT_RDWR);
      } else if (fin) {
        ::shutdown(p.sock.get(), SHUT_WR);
      }
    }
  }
  // The client is gone: end every connection and wait for the pumps.
  for (auto& [key, p] : by_request) {
    {
      absl::MutexLock lock(&p->mu);
      if (p->sock.valid()) ::shutdown(p->sock.get(), SHUT_RDWR);
    }
  }
  for (auto& [key, p] : by_request) {
    if (p->th.joinable()) p->th.join();
  }
  spdy.conn().shutdownBoth();
}

void servePortForwardWs(WsConn& ws, const std::vector<int32_t>& ports, const PortDialer& dial,
                        const std::string& pod) {
  struct Port {
    int32_t port = 0;
    UniqueFd sock;
    std::thread th;
  };
  std::vector<std::unique_ptr<Port>> conns;
  std::atomic<size_t> open{0};
  auto prefix = [](size_t channel, int32_t port) {
    std::string m;
    m.push_back(static_cast<char>(channel));
    m.push_back(static_cast<char>(port & 0xff));
    m.push_back(static_cast<char>((port >> 8) & 0xff));
    return m;
  };
  for (size_t i = 0; i < ports.size(); ++i) {
    auto c = std::make_unique<Port>();
    c->port = ports[i];
    ws.writeMessage(prefix(2 * i, ports[i]));
    ws.writeMessage(prefix(2 * i + 1, ports[i]));
    auto sock = dial(ports[i]);
    if (!sock.ok()) {
      std::string msg;
      msg.push_back(static_cast<char>(2 * i + 1));
      msg += forwardError(ports[i], pod, sock.status());
      ws.writeMessage(msg);
    } else {
      c->sock = std::move(sock).value();
      ++open;
    }
    conns.push_back(std::move(c));
  }
  for (size_t i = 0; i < conns.size(); ++i) {
    Port* c = conns[i].get();
    if (!c->sock.valid()) continue;
    c->th = std::thread([&ws, &open, c, i] {
      std::string buf(kChunk + 1, '\0');
      for (;;) {
        ssize_t n = ::recv(c->sock.get(), buf.data() + 1, kChunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf[0] = static_cast<char>(2 * i);
        if (!ws.writeMessage(std::string_view(buf.data(), static_cast<size_t>(n) + 1))) break;
      }
      // Every forwarded connection has ended: so has the session.
      if (--open == 0) {
        ws.close();
        ws.conn().endWrites();
      }
    });
  }
  if (open == 0) {
    ws.close();
    ws.conn().endWrites();
  }
  std::string msg;
  WsOpcode op;
  while (ws.readMessage(&msg, &op)) {
    if (op != WsOpcode::kBinary || msg.empty()) continue;
    size_t channel = static_cast<unsigned char>(msg[0]);
    if (channel % 2 != 0 || channel / 2 >= conns.size()) continue;
    Port& c = *conns[channel / 2];
    if (c.sock.valid() && msg.size() > 1) {
      writeSocket(c.sock.get(), std::string_view(msg).substr(1));
    }
  }
  for (auto& c : conns) {
    if (c->sock.valid()) ::shutdown(c->sock.get(), SHUT_RDWR);
  }
  for (auto& c : conns) {
    if (c->th.joinable()) c->th.join();
  }
  ws.conn().shutdownBoth();
}

}  // namespace berth::streaming
