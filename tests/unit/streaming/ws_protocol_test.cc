// Remote commands over WebSocket with every subprotocol Kubernetes' stream server accepts
// (issue 13: the conformance spec offers only channel.k8s.io, which berth refused): the
// negotiation, the binary and base64 framing, the error channel of each version, v5's close
// signal, and whole attach sessions through the server against pipes instead of a container.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "streaming/client.h"
#include "streaming/server.h"
#include "streaming/ws_transport.h"
#include "test_util.h"

namespace berth::streaming {
namespace {

// ---- negotiation ----

std::string negotiated(const std::vector<std::string>& offered) {
  auto p = negotiateWsCommandProtocol(offered);
  return p ? std::string(p->name) : "<refused>";
}

TEST(WsNegotiationTest, TheClientsFirstServedProtocolWins) {
  struct Case {
    std::vector<std::string> offered;
    std::string chosen;
  };
  const Case cases[] = {
      // What the conformance spec "remote command execution over websockets" offers.
      {{"channel.k8s.io"}, "channel.k8s.io"},
      {{"base64.channel.k8s.io"}, "base64.channel.k8s.io"},
      {{"v4.channel.k8s.io"}, "v4.channel.k8s.io"},
      {{"v4.base64.channel.k8s.io"}, "v4.base64.channel.k8s.io"},
      {{"v5.channel.k8s.io"}, "v5.channel.k8s.io"},
      // No header at all: the plain channel protocol, named back as nothing.
      {{}, ""},
      // The client's order, not the server's.
      {{"base64.channel.k8s.io", "v5.channel.k8s.io"}, "base64.channel.k8s.io"},
      {{"v4.base64.channel.k8s.io", "v4.channel.k8s.io"}, "v4.base64.channel.k8s.io"},
      {{"v9.channel.k8s.io", "channel.k8s.io"}, "channel.k8s.io"},
      // Nothing served: names compare exactly; no base64 v5; port-forward's tunnel is not ours.
      {{"v9.channel.k8s.io"}, "<refused>"},
      {{"Channel.K8s.io"}, "<refused>"},
      {{"v5.base64.channel.k8s.io"}, "<refused>"},
      {{"SPDY/3.1+portforward.k8s.io"}, "<refused>"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(negotiated(c.offered), c.chosen) << ::testing::PrintToString(c.offered);
  }
}

TEST(WsNegotiationTest, EachProtocolsFramingAndVersion) {
  struct Case {
    const char* name;
    bool base64;
    bool status_json;
    bool close_signal;
  };
  const Case cases[] = {
      {"", false, false, false},
      {"channel.k8s.io", false, false, false},
      {"base64.channel.k8s.io", true, false, false},
      {"v4.channel.k8s.io", false, true, false},
      {"v4.base64.channel.k8s.io", true, true, false},
      {"v5.channel.k8s.io", false, true, true},
  };
  EXPECT_EQ(wsCommandProtocols().size(), std::size(cases));
  for (const auto& c : cases) {
    auto p = findWsCommandProtocol(c.name);
    ASSERT_TRUE(p.has_value()) << c.name;
    EXPECT_EQ(p->base64, c.base64) << c.name;
    EXPECT_EQ(p->statusJson(), c.status_json) << c.name;
    EXPECT_EQ(p->closeSignal(), c.close_signal) << c.name;
  }
  EXPECT_EQ(wsCommandProtocolList(),
            "v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, channel.k8s.io, "
            "base64.channel.k8s.io");
}

// ---- framing ----

const WsCommandProtocol kBinary = *findWsCommandProtocol("channel.k8s.io");
const WsCommandProtocol kBase64 = *findWsCommandProtocol("base64.channel.k8s.io");

TEST(WsChannelCodecTest, BinaryIsAChannelByteAndTheData) {
  auto m = encodeWsChannelMessage(kBinary, 1, "hi\n");
  EXPECT_EQ(m.opcode, WsOpcode::kBinary);
  EXPECT_EQ(m.payload, std::string("\x01hi\n", 4));
  EXPECT_EQ(encodeWsChannelMessage(kBinary, 1, "").payload, std::string("\x01", 1));
  int ch = -1;
  std::string data;
  ASSERT_TRUE(decodeWsChannelMessage(kBinary, std::string("\0foo\n", 5), &ch, &data));
  EXPECT_EQ(ch, 0);
  EXPECT_EQ(data, "foo\n");
  ASSERT_TRUE(decodeWsChannelMessage(kBinary, std::string("\x04", 1), &ch, &data));
  EXPECT_EQ(ch, 4);
  EXPECT_EQ(data, "");
  EXPECT_FALSE(decodeWsChannelMessage(kBinary, "", &ch, &data));
}

TEST(WsChannelCodecTest, Base64IsAnAsciiDigitAndBase64Text) {
  // The examples of apimachinery's wsstream: "foo\n" on stdin, "\n" on stdout.
  auto m = encodeWsChannelMessage(kBase64, 0, "foo\n");
  EXPECT_EQ(m.opcode, WsOpcode::kText);
  EXPECT_EQ(m.payload, "0Zm9vCg==");
  EXPECT_EQ(encodeWsChannelMessage(kBase64, 1, "\n").payload, "1Cg==");
  EXPECT_EQ(encodeWsChannelMessage(kBase64, 3, "").payload, "3");  // the empty first message
  int ch = -1;
  std::string data;
  ASSERT_TRUE(decodeWsChannelMessage(kBase64, "0Zm9vCg==", &ch, &data));
  EXPECT_EQ(ch, 0);
  EXPECT_EQ(data, "foo\n");
  ASSERT_TRUE(decodeWsChannelMessage(kBase64, "4", &ch, &data));
  EXPECT_EQ(ch, 4);
  EXPECT_EQ(data, "");
  // Not a channel digit, or not base64: no channel data.
  EXPECT_FALSE(decodeWsChannelMessage(kBase64, std::string("\x00Zm9v", 5), &ch, &data));
  EXPECT_FALSE(decodeWsChannelMessage(kBase64, "xZm9v", &ch, &data));
  EXPECT_FALSE(decodeWsChannelMessage(kBase64, "0Zm9v!!", &ch, &data));
  EXPECT_FALSE(decodeWsChannelMessage(kBase64, "", &ch, &data));
}

TEST(WsChannelCodecTest, EveryByteRoundTripsInBothFramings) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (const auto& p : {kBinary, kBase64}) {
    for (int channel = 0; channel <= 4; ++channel) {
      for (size_t len : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, all.size()}) {
        std::string in = all.substr(0, len);
        auto m = encodeWsChannelMessage(p, channel, in);
        int ch = -1;
        std::string out;
        ASSERT_TRUE(decodeWsChannelMessage(p, m.payload, &ch, &out)) << p.name << " " << len;
        EXPECT_EQ(ch, channel);
        EXPECT_EQ(out, in) << p.name << " " << len;
      }
    }
  }
}

TEST(WsStatusTest, BeforeV4OnlyFailuresAreReportedAsText) {
  EXPECT_EQ(CommandStatus::success().text(), "");
  EXPECT_EQ(CommandStatus::success().json(), R"({"metadata":{},"status":"Success"})");
  auto code = CommandStatus::exitCode({"sh", "-c", "exit 3"}, 3);
  EXPECT_EQ(code.text(),
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], "
            "exit code 3");
  auto j = nlohmann::json::parse(code.json());
  EXPECT_EQ(j["message"], code.text());
  EXPECT_EQ(j["details"]["causes"][0]["message"], "3");
  auto failed = CommandStatus::failure("no container c");
  EXPECT_EQ(failed.text(), "no container c");
  EXPECT_EQ(nlohmann::json::parse(failed.json())["message"], "no container c");
}

// ---- whole sessions ----

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r.reset(p[0]);
    w.reset(p[1]);
  }
};

// Attach to "pipes": the container's stdout and stderr are pipes the test writes, its stdin
// one the test reads. One attach per backend.
class PipeBackend : public testing::RefusingBackend {
 public:
  absl::StatusOr<std::unique_ptr<shim::Attachment>> attach(const AttachParams&) override {
    auto a = std::make_unique<shim::Attachment>();
    a->io.stdin = std::move(in.w);
    a->io.stdout = std::move(out.r);
    a->io.stderr = std::move(err.r);
    return a;
  }
  Pipe in, out, err;
};

bool writeFd(const UniqueFd& fd, std::string_view s) {
  return ::write(fd.get(), s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

// Reads until end of file (then sets *eof), `want` bytes, or 10 s of silence.
std::string readFd(const UniqueFd& fd, size_t want = SIZE_MAX, bool* eof = nullptr) {
  std::string got;
  char buf[256];
  while (got.size() < want) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    ssize_t n = ::read(fd.get(), buf, std::min(sizeof buf, want - got.size()));
    if (n == 0 && eof != nullptr) *eof = true;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Offers exactly `name` ("" offers none).
std::vector<std::string> offer(std::string_view name) {
  return name.empty() ? std::vector<std::string>{} : std::vector<std::string>{std::string(name)};
}

TEST(WsSessionTest, AttachWorksWithEverySubprotocol) {
  for (const auto& p : wsCommandProtocols()) {
    SCOPED_TRACE(std::string("subprotocol '") + std::string(p.name) + "'");
    PipeBackend backend;
    Server server({}, backend);
    ASSERT_TRUE(server.start().ok());
    auto url = server.urlFor(
        AttachParams{.container_id = "c", .stdin = true, .stdout = true, .stderr = true});
    ASSERT_TRUE(url.ok());
    auto c = CommandClient::connect(
        *url, {.stdin = true, .transport = Transport::kWebSocket, .ws_protocols = offer(p.name)});
    ASSERT_TRUE(c.ok()) << c.status();
    std::string out, err;
    std::thread container([&] {
      // Bytes that base64 and a channel byte must both carry untouched.
      const std::string input("in\x00\xff\n", 5);
      EXPECT_TRUE((*c)->writeStdin(input));
      EXPECT_EQ(readFd(backend.in.r, input.size()), input);
      EXPECT_TRUE(writeFd(backend.out.w, "to stdout\n"));
      EXPECT_TRUE(writeFd(backend.err.w, "to stderr\n"));
      backend.out.w.reset();  // the container's output ends: so does the attach
      backend.err.w.reset();
    });
    auto r = (*c)->run([&](int ch, std::string_view d) { (ch == 1 ? out : err).append(d); });
    container.join();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->protocol, p.name);
    EXPECT_EQ(out, "to stdout\n");
    EXPECT_EQ(err, "to stderr\n");
    EXPECT_EQ(r->exit_code, 0) << r->status_json;
    // v4 and v5 report the success; before v4 nothing is written on the error channel.
    EXPECT_EQ(r->status_json, p.statusJson() ? R"({"metadata":{},"status":"Success"})" : "");
    server.stop();
  }
}

TEST(WsSessionTest, FailuresAreAStatusFromV4AndPlainTextBefore) {
  testing::RefusingBackend backend;
  Server server({}, backend);
  ASSERT_TRUE(server.start().ok());
  for (const auto& p : wsCommandProtocols()) {
    SCOPED_TRACE(std::string("subprotocol '") + std::string(p.name) + "'");
    auto url = server.urlFor(ExecParams{.container_id = "gone", .cmd = {"true"}, .stdout = true});
    ASSERT_TRUE(url.ok());
    auto c = CommandClient::connect(
        *url, {.stderr = false, .transport = Transport::kWebSocket, .ws_protocols = offer(p.name)});
    ASSERT_TRUE(c.ok()) << c.status();
    auto r = (*c)->run([](int, std::string_view) {});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, -1);
    EXPECT_EQ(r->message, "no container gone");
    if (p.statusJson()) {
      EXPECT_EQ(nlohmann::json::parse(r->status_json)["status"], "Failure") << r->status_json;
    } else {
      EXPECT_EQ(r->status_json, "no container gone");
    }
  }
  server.stop();
}

// A client of raw frames, to see exactly what the server sends.
struct RawWs {
  explicit RawWs(std::unique_ptr<ByteStream> c) : conn(std::move(c)) {}
  std::unique_ptr<ByteStream> conn;
  WsParser parser;

  // The next data message (false when the connection ended or the server closed it).
  bool next(WsFrame* f) {
    std::string chunk;
    for (;;) {
      bool got = false;
      if (!parser.next(f, &got).ok()) return false;
      if (got) return f->opcode != WsOpcode::kClose;
      if (!conn->readSome(&chunk)) return false;
      parser.feed(chunk);
    }
  }
  bool send(WsOpcode op, std::string_view payload) {
    return conn->writeAll(encodeWsFrame(op, payload, /*mask=*/true));
  }
};

TEST(WsSessionTest, TheFirstMessageIsEmptyOnTheLowestWritableChannel) {
  struct Case {
    const char* protocol;
    bool stdout, stderr;
    WsOpcode opcode;
    std::string first;
  };
  const Case cases[] = {
      {"", true, true, WsOpcode::kBinary, std::string("\x01", 1)},
      {"channel.k8s.io", false, true, WsOpcode::kBinary, std::string("\x02", 1)},
      {"base64.channel.k8s.io", true, true, WsOpcode::kText, "1"},
      {"v4.base64.channel.k8s.io", false, true, WsOpcode::kText, "2"},
      {"v5.channel.k8s.io", false, false, WsOpcode::kBinary, std::string("\x03", 1)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string("subprotocol '") + c.protocol + "'");
    PipeBackend backend;
    Server server({}, backend);
    ASSERT_TRUE(server.start().ok());
    auto url = server.urlFor(AttachParams{.container_id = "c",
                                          .stdin = !c.stdout && !c.stderr,
                                          .stdout = c.stdout,
                                          .stderr = c.stderr});
    ASSERT_TRUE(url.ok());
    auto up = upgrade(*url, Transport::kWebSocket, offer(c.protocol));
    ASSERT_TRUE(up.ok()) << up.status();
    ASSERT_EQ(up->status, 101) << up->body;
    EXPECT_EQ(up->protocol, c.protocol);  // none offered: none named back
    RawWs ws(std::move(up->conn));
    WsFrame f;
    ASSERT_TRUE(ws.next(&f));
    EXPECT_EQ(f.opcode, c.opcode);
    EXPECT_EQ(f.payload, c.first);
    ws.conn->shutdownBoth();
    server.stop();
  }
}

TEST(WsSessionTest, V5sCloseSignalEndsStdinAndOlderVersionsCannot) {
  PipeBackend backend;
  Server server({}, backend);
  ASSERT_TRUE(server.start().ok());
  auto url = server.urlFor(AttachParams{.container_id = "c", .stdin = true, .stdout = true});
  ASSERT_TRUE(url.ok());
  auto c = CommandClient::connect(*url, {.stdin = true,
                                         .stderr = false,
                                         .transport = Transport::kWebSocket,
                                         .ws_protocols = {kWsProtocolV5}});
  ASSERT_TRUE(c.ok()) << c.status();
  std::thread container([&] {
    EXPECT_TRUE((*c)->writeStdin("last"));
    EXPECT_TRUE((*c)->closeStdin());
    bool eof = false;
    EXPECT_EQ(readFd(backend.in.r, SIZE_MAX, &eof), "last");
    EXPECT_TRUE(eof);  // the end of file came through
    backend.out.w.reset();
    backend.err.w.reset();
  });
  auto r = (*c)->run([](int, std::string_view) {});
  container.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  server.stop();

  // v4 has no close signal: the client says so instead of sending one the server ignores.
  PipeBackend b4;
  Server s4({}, b4);
  ASSERT_TRUE(s4.start().ok());
  url = s4.urlFor(AttachParams{.container_id = "c", .stdin = true, .stdout = true});
  ASSERT_TRUE(url.ok());
  c = CommandClient::connect(*url, {.stdin = true,
                                    .stderr = false,
                                    .transport = Transport::kWebSocket,
                                    .ws_protocols = {kWsProtocolV4}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE((*c)->closeStdin());
  b4.out.w.reset();
  b4.err.w.reset();
  r = (*c)->run([](int, std::string_view) {});
  ASSERT_TRUE(r.ok()) << r.status();
  s4.stop();
}

TEST(WsSessionTest, AMalformedCloseSignalEndsTheSession) {
  PipeBackend backend;
  Server server({}, backend);
  ASSERT_TRUE(server.start().ok());
  auto url = server.urlFor(AttachParams{.container_id = "c", .stdin = true, .stdout = true});
  ASSERT_TRUE(url.ok());
  auto up = upgrade(*url, Transport::kWebSocket, {kWsProtocolV5});
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_EQ(up->status, 101);
  RawWs ws(std::move(up->conn));
  WsFrame f;
  ASSERT_TRUE(ws.next(&f));  // the empty first message
  ws.send(WsOpcode::kBinary, std::string("\xff\x00\x00", 3));
  // The session ends without a status, and the container's stdin is let go.
  ws.conn->setReadTimeout(10000);
  std::string rest;
  while (ws.next(&f)) rest += f.payload;
  EXPECT_EQ(rest, "");
  bool eof = false;
  EXPECT_EQ(readFd(backend.in.r, SIZE_MAX, &eof), "");
  EXPECT_TRUE(eof);
  server.stop();
}

TEST(WsSessionTest, UnservedSubprotocolsAreRefusedWithTheServedList) {
  testing::RefusingBackend backend;
  Server server({}, backend);
  ASSERT_TRUE(server.start().ok());
  auto url = server.urlFor(ExecParams{.container_id = "c", .cmd = {"true"}, .stdout = true});
  ASSERT_TRUE(url.ok());
  auto up = upgrade(*url, Transport::kWebSocket, {"v9.channel.k8s.io", "binary.k8s.io"});
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->status, 403);
  EXPECT_NE(up->body.find("channel.k8s.io, base64.channel.k8s.io"), std::string::npos) << up->body;
  EXPECT_NE(up->body.find("v9.channel.k8s.io, binary.k8s.io"), std::string::npos) << up->body;
  server.stop();
}

}  // namespace
}  // namespace berth::streaming
