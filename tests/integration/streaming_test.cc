// The streaming server with real clients of both protocols (berth's own SPDY and WebSocket
// client, speaking what kubectl and crictl speak): exec with and without a terminal, stdin,
// exit codes, resize, clean-up when the client leaves; attach; port-forward into pod and host
// networks; one-time and expiring URLs.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_join.h"
#include "cri_calls.h"
#include "pod_env.h"
#include "streaming/client.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;
using streaming::CommandClient;
using streaming::CommandOptions;
using streaming::PortForwardClient;
using streaming::Transport;

const char* name(Transport t) { return t == Transport::kSpdy ? "spdy" : "websocket"; }

std::string portForwardUrl(Berthd& d, const std::string& pod, std::vector<int32_t> ports) {
  v1::PortForwardRequest req;
  req.set_pod_sandbox_id(pod);
  for (int32_t p : ports) req.add_port(p);
  v1::PortForwardResponse resp;
  auto ctx = Berthd::context(10);
  grpc::Status s = d.runtime().PortForward(ctx.get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.url();
}

struct Output {
  std::string out, err;
};

// Runs a command session to its end, collecting its output.
streaming::CommandResult runSession(CommandClient& c, Output* o,
                                    const std::function<void()>& after_start = nullptr) {
  std::thread side;
  if (after_start) side = std::thread(after_start);
  auto r = c.run([&](int ch, std::string_view data) { (ch == 1 ? o->out : o->err).append(data); });
  if (side.joinable()) side.join();
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : streaming::CommandResult{};
}

class StreamingTest : public ::testing::TestWithParam<Transport> {};

TEST_P(StreamingTest, ExecDeliversOutputAndExitCode) {
  PodEnv e("exec");
  std::string id = e.run(e.containerConfig("box"));
  std::string url = execUrl(e.d, id, {"sh", "-c", "echo out; echo err >&2; exit 3"}, false, true,
                            true, false);
  ASSERT_NE(url.find("/exec/"), std::string::npos) << url;
  auto c = CommandClient::connect(url, {.stdin = false, .stdout = true, .stderr = true,
                                        .tty = false, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  Output o;
  auto r = runSession(**c, &o);
  EXPECT_EQ(o.out, "out\n");
  EXPECT_EQ(o.err, "err\n");
  EXPECT_EQ(r.exit_code, 3) << r.status_json;
  EXPECT_NE(r.message.find("non-zero exit code"), std::string::npos) << r.status_json;

  url = execUrl(e.d, id, {"true"}, false, true, true, false);
  c = CommandClient::connect(url, {.transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  r = runSession(**c, &o);
  EXPECT_EQ(r.exit_code, 0) << r.status_json;
  EXPECT_EQ(r.status_json, R"({"metadata":{},"status":"Success"})");
}

TEST_P(StreamingTest, ExecEchoesStdin) {
  PodEnv e("stdin");
  std::string id = e.run(e.containerConfig("box"));
  std::string url = execUrl(e.d, id, {"cat"}, true, true, true, false);
  auto c = CommandClient::connect(url, {.stdin = true, .stdout = true, .stderr = true,
                                        .tty = false, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  Output o;
  auto r = runSession(**c, &o, [&] {
    (*c)->writeStdin("hello ");
    (*c)->writeStdin("stdin\n");
    (*c)->closeStdin();  // cat sees its end of file and exits
  });
  EXPECT_EQ(o.out, "hello stdin\n");
  EXPECT_EQ(r.exit_code, 0) << r.status_json;
}

TEST_P(StreamingTest, ExecWithTerminalAndResize) {
  PodEnv e("tty");
  std::string id = e.run(e.containerConfig("box"));
  std::string url = execUrl(e.d, id, {"sh"}, true, true, false, true);
  auto c = CommandClient::connect(url, {.stdin = true, .stdout = true, .stderr = false,
                                        .tty = true, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  Output o;
  auto r = runSession(**c, &o, [&] {
    (*c)->resize(100, 40);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*c)->writeStdin("[ -t 0 ] && echo is-a-tty; stty size; exit 7\n");
  });
  EXPECT_NE(o.out.find("is-a-tty"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("40 100"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "");  // a terminal has one output stream
  EXPECT_EQ(r.exit_code, 7) << r.status_json;
}

TEST_P(StreamingTest, ExecIsKilledWhenTheClientLeaves) {
  PodEnv e("leave");
  std::string id = e.run(e.containerConfig("box"));
  std::string url = execUrl(e.d, id, {"sh", "-c", "echo started; exec sleep 7777"}, false, true,
                            false, false);
  auto c = CommandClient::connect(url, {.stdin = false, .stdout = true, .stderr = false,
                                        .tty = false, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out;
  auto r = (*c)->run([&](int, std::string_view data) {
    out.append(data);
    if (out.find("started") != std::string::npos) (*c)->abort();
  });
  EXPECT_NE(out.find("started"), std::string::npos);
  auto running = [&] { return e.execOut(id, {"ps", "-o", "args"}).find("sleep 7777") != std::string::npos; };
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !running();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone) << e.execOut(id, {"ps", "-o", "args"});
}

TEST_P(StreamingTest, AttachSeesOutputAndFeedsStdin) {
  PodEnv e("attach");
  auto cfg = e.containerConfig("echoer", {"sh", "-c", "echo ready; exec cat"});
  cfg.set_stdin(true);
  std::string id = e.run(cfg);
  std::string url = attachUrl(e.d, id, true, true, true, false);
  ASSERT_NE(url.find("/attach/"), std::string::npos) << url;
  auto c = CommandClient::connect(url, {.stdin = true, .stdout = true, .stderr = true,
                                        .tty = false, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out;
  std::atomic<bool> echoed{false};
  std::thread writer([&] {
    for (int i = 0; i < 50 && !echoed; ++i) {
      (*c)->writeStdin("ping\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto r = (*c)->run([&](int, std::string_view data) {
    out.append(data);
    if (out.find("ping\n") != std::string::npos) {
      echoed = true;
      (*c)->abort();
    }
  });
  writer.join();
  EXPECT_TRUE(echoed) << out;
  // The container goes on after the client left, and its log has what it echoed.
  EXPECT_EQ(e.status(id).status().state(), v1::CONTAINER_RUNNING);
}

TEST_P(StreamingTest, AttachStdinOnceClosesTheContainersStdin) {
  PodEnv e("stdin-once");
  auto cfg = e.containerConfig("reader", {"sh", "-c", "cat; echo cat-saw-eof; exec sleep 3600"});
  cfg.set_stdin(true);
  cfg.set_stdin_once(true);
  std::string id = e.run(cfg);
  auto c = CommandClient::connect(attachUrl(e.d, id, true, true, false, false),
                                  {.stdin = true, .stdout = true, .stderr = false, .tty = false,
                                   .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out;
  std::thread writer([&] {
    (*c)->writeStdin("last words\n");
    (*c)->closeStdin();
  });
  (void)(*c)->run([&](int, std::string_view data) {
    out.append(data);
    if (out.find("cat-saw-eof") != std::string::npos) (*c)->abort();
  });
  writer.join();
  EXPECT_NE(out.find("last words\ncat-saw-eof\n"), std::string::npos) << out;
  // Its stdin is gone for good: a second attach cannot have it.
  auto again = CommandClient::connect(attachUrl(e.d, id, true, true, false, false),
                                      {.stdin = true, .stdout = true, .stderr = false,
                                       .tty = false, .transport = GetParam()});
  ASSERT_TRUE(again.ok()) << again.status();
  auto r = (*again)->run([](int, std::string_view) {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->message.find("stdin"), std::string::npos) << r->status_json;
}

TEST_P(StreamingTest, AttachToATerminalResizesIt) {
  PodEnv e("attach-tty");
  auto cfg = e.containerConfig("shell", {"sh"});
  cfg.set_stdin(true);
  cfg.set_tty(true);
  std::string id = e.run(cfg);
  std::string url = attachUrl(e.d, id, true, true, false, true);
  auto c = CommandClient::connect(url, {.stdin = true, .stdout = true, .stderr = false,
                                        .tty = true, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out;
  std::atomic<bool> seen{false};
  std::thread writer([&] {
    (*c)->resize(90, 30);
    for (int i = 0; i < 50 && !seen; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      (*c)->writeStdin("stty size\n");
    }
  });
  auto r = (*c)->run([&](int, std::string_view data) {
    out.append(data);
    if (out.find("30 90") != std::string::npos) {
      seen = true;
      (*c)->abort();
    }
  });
  writer.join();
  EXPECT_TRUE(seen) << out;
}

std::string httpGetThroughForward(const std::string& url, Transport t, int32_t port,
                                  std::string* error_text) {
  auto c = PortForwardClient::connect(url, t, port);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return "";
  (*c)->write("GET / HTTP/1.0\r\n\r\n");
  auto body = (*c)->readAll(error_text, absl::Seconds(10));
  EXPECT_TRUE(body.ok()) << body.status();
  (*c)->close();
  return body.ok() ? *body : "";
}

TEST_P(StreamingTest, PortForwardIntoThePodNetwork) {
  PodEnv e("pf", "", "", v1::POD);
  auto cfg = e.containerConfig(
      "web", {"sh", "-c", "mkdir -p /www && echo hello-through-forward > /www/index.html && "
                          "exec httpd -f -p 8080 -h /www"});
  e.run(cfg);
  std::string body, err;
  for (int i = 0; i < 50; ++i) {  // until httpd listens
    err.clear();
    body = httpGetThroughForward(portForwardUrl(e.d, e.pod, {8080}), GetParam(), 8080, &err);
    if (body.find("hello-through-forward") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(body.find("200 OK"), std::string::npos) << body << err;
  EXPECT_NE(body.find("hello-through-forward"), std::string::npos) << body << err;
  if (GetParam() == Transport::kWebSocket) {
    // SPDY tunnelled in WebSocket, as crictl and kubectl forward ports over WebSocket.
    err.clear();
    body = httpGetThroughForward(portForwardUrl(e.d, e.pod, {8080}), Transport::kSpdyInWebSocket,
                                 8080, &err);
    EXPECT_NE(body.find("hello-through-forward"), std::string::npos) << body << err;
  }
  // Nothing listens on port 81 in the pod (the host's port 81 does not matter).
  err.clear();
  body = httpGetThroughForward(portForwardUrl(e.d, e.pod, {81}), GetParam(), 81, &err);
  EXPECT_EQ(body, "");
  EXPECT_NE(err.find("error forwarding port 81"), std::string::npos) << err;
}

TEST_P(StreamingTest, PortForwardOnTheHostNetwork) {
  PodEnv e("pf-host");
  int port = freeLoopbackPort();
  auto cfg = e.containerConfig(
      "web", {"sh", "-c", "mkdir -p /www && echo hello-host-net > /www/index.html && exec httpd -f -p " +
                              std::to_string(port) + " -h /www"});
  e.run(cfg);
  std::string body, err;
  for (int i = 0; i < 50; ++i) {
    err.clear();
    body = httpGetThroughForward(portForwardUrl(e.d, e.pod, {port}), GetParam(), port, &err);
    if (body.find("hello-host-net") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(body.find("hello-host-net"), std::string::npos) << body << err;
}

INSTANTIATE_TEST_SUITE_P(Transports, StreamingTest,
                         ::testing::Values(Transport::kSpdy, Transport::kWebSocket),
                         [](const auto& info) { return std::string(name(info.param)); });

TEST(StreamingUrlTest, UrlsAreOneTimeAndExpire) {
  PodEnv e("tokens", "[streaming]\ntoken_ttl_seconds = 1\n");
  std::string id = e.run(e.containerConfig("box"));
  std::string url = execUrl(e.d, id, {"true"}, false, true, false, false);
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  auto c = CommandClient::connect(url, {.stderr = false});
  ASSERT_TRUE(c.ok()) << c.status();
  Output o;
  EXPECT_EQ(runSession(**c, &o).exit_code, 0);
  // Used once: refused.
  auto again = streaming::upgrade(url, Transport::kSpdy, {"v4.channel.k8s.io"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, 404);
  // Bound to its kind: an exec token is no attach token (and is spent by trying).
  url = execUrl(e.d, id, {"true"}, false, true, false, false);
  std::string wrong = url;
  wrong.replace(wrong.find("/exec/"), 6, "/attach/");
  EXPECT_EQ(streaming::upgrade(wrong, Transport::kWebSocket, {"v5.channel.k8s.io"})->status, 404);
  EXPECT_EQ(streaming::upgrade(url, Transport::kWebSocket, {"v5.channel.k8s.io"})->status, 404);
  // Unused for longer than its time to live: expired.
  url = execUrl(e.d, id, {"true"}, false, true, false, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(streaming::upgrade(url, Transport::kSpdy, {"v4.channel.k8s.io"})->status, 404);
  // A protocol nobody speaks is refused with the versions the server knows.
  url = execUrl(e.d, id, {"true"}, false, true, false, false);
  auto refused = streaming::upgrade(url, Transport::kSpdy, {"v9.channel.k8s.io"});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 403);
  EXPECT_NE(refused->body.find("v4.channel.k8s.io"), std::string::npos) << refused->body;
}

TEST(StreamingUrlTest, ServesHttpsWithACertificate) {
  char tmpl[] = "/tmp/berth-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  RunResult gen = runProgram({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                              "/CN=127.0.0.1", "-keyout", dir + "/key.pem", "-out",
                              dir + "/cert.pem"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  {
    PodEnv e("tls", "[streaming]\ntls_cert_file = \"" + dir + "/cert.pem\"\ntls_key_file = \"" +
                        dir + "/key.pem\"\n");
    std::string id = e.run(e.containerConfig("box"));
    for (Transport t : {Transport::kSpdy, Transport::kWebSocket}) {
      std::string url = execUrl(e.d, id, {"sh", "-c", "echo over-tls; exit 2"}, false, true, false,
                                false);
      EXPECT_EQ(url.rfind("https://127.0.0.1:", 0), 0u) << url;
      auto c = CommandClient::connect(url, {.stderr = false, .transport = t});
      ASSERT_TRUE(c.ok()) << c.status();
      Output o;
      auto r = runSession(**c, &o);
      EXPECT_EQ(o.out, "over-tls\n") << name(t);
      EXPECT_EQ(r.exit_code, 2) << r.status_json;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(StreamingUrlTest, RequestsAreChecked) {
  PodEnv e("checks");
  std::string id = e.run(e.containerConfig("box"));
  grpc::Status st;
  execUrl(e.d, id, {"sh"}, false, true, true, true, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  execUrl(e.d, id, {"sh"}, false, false, false, false, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  execUrl(e.d, id, {}, false, true, false, false, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  execUrl(e.d, "no-such-container", {"sh"}, false, true, false, false, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  ASSERT_TRUE(e.stop(id, 0).ok());
  execUrl(e.d, id, {"sh"}, false, true, false, false, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
}

}  // namespace
}  // namespace berth::testing

namespace berth::testing {
namespace {

TEST(StreamingCtlTest, BerthctlExecAttachAndPortForward) {
  PodEnv e("ctl", "", "", v1::POD);
  std::string id = e.run(e.containerConfig(
      "web", {"sh", "-c", "mkdir -p /www && echo hello-ctl > /www/index.html && "
                          "httpd -p 8080 -h /www && while true; do echo tick; sleep 0.2; done"}));
  const std::string ctl = berthctlPath() + " -r " + e.d.endpoint();
  for (const char* transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    // exec -i: stdin goes through, the exit code comes back.
    RunResult r = runProgram({"sh", "-c", "printf 'through stdin\\n' | " + ctl + " exec -i --transport " +
                                              transport + " " + id + " sh -c 'cat; exit 4'"});
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_EQ(r.out, "through stdin\n") << r.err;
    // exec -it: a terminal (no local one here, so no raw mode).
    r = runProgram({"sh", "-c", "printf '[ -t 0 ] && echo tty-yes; exit 5\\n' | " + ctl +
                                    " exec -it --transport " + transport + " " + id + " sh"});
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_NE(r.out.find("tty-yes"), std::string::npos) << r.out << r.err;
    // attach: the container's output until we stop listening.
    r = runProgram({"timeout", "2", berthctlPath(), "-r", e.d.endpoint(), "attach", "--transport",
                    transport, id});
    EXPECT_NE(r.out.find("tick\ntick\n"), std::string::npos) << r.out << r.err;
  }
  // port-forward: a local port to the pod's httpd.
  for (const char* transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    // ":8080": berthctl picks a free local port and prints it.
    RunResult r = runProgram(
        {"sh", "-c",
         ctl + " port-forward --transport " + transport + " " + e.pod +
             " :8080 > /tmp/berth-pf-$$.log 2>&1 & pid=$!; "
             "for i in $(seq 50); do "
             "p=$(sed -n 's/^Forwarding from 127.0.0.1:\\([0-9]*\\) .*/\\1/p' /tmp/berth-pf-$$.log); "
             "[ -n \"$p\" ] && curl -s --max-time 5 http://127.0.0.1:$p/ && break; sleep 0.1; done; "
             "kill $pid; cat /tmp/berth-pf-$$.log >&2; rm -f /tmp/berth-pf-$$.log"});
    EXPECT_EQ(r.out, "hello-ctl\n") << r.err;
  }
}

}  // namespace
}  // namespace berth::testing

namespace berth::testing {
namespace {

// tests/interop/spdyclient, built against Debian's docker/spdystream: the SPDY library
// under kubectl's and crictl's streaming code, so this checks berth's SPDY (framing, header
// compression, pings, stream ends) against an implementation that is not berth's own.
std::string upstreamSpdyClient() {
  static const std::string path = [] {
    std::string dir = "/tmp/berth-spdyclient-" + std::to_string(::getpid());
    RunResult r = runProgram({"env", "GOPATH=/usr/share/gocode", "GO111MODULE=off",
                              "GOCACHE=" + dir + "/cache", "go", "build", "-o", dir + "/spdyclient",
                              sourceDir() + "/tests/interop/spdyclient/main.go"},
                             300);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return dir + "/spdyclient";
  }();
  return path;
}

TEST(StreamingInteropTest, UpstreamSpdystreamClientExecsAttachesAndForwards) {
  std::string client = upstreamSpdyClient();
  PodEnv e("interop", "", "", v1::POD);
  std::string id = e.run(e.containerConfig(
      "web", {"sh", "-c", "mkdir -p /www && echo hello-upstream > /www/index.html && "
                          "exec httpd -f -p 8080 -h /www"}));
  std::string url = execUrl(e.d, id, {"sh", "-c", "cat; echo to-stderr >&2; exit 6"}, true, true,
                            true, false);
  RunResult r = runProgram({client, "exec", url, "from upstream\n"}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stdout=\"from upstream\\n\""), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("stderr=\"to-stderr\\n\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"reason\":\"NonZeroExitCode\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"message\":\"6\""), std::string::npos) << r.out;

  // Attach speaks the same protocol: a container that waits for a line on its stdin.
  auto cfg = e.containerConfig("reader", {"sh", "-c", "read line; echo got:$line; echo bye >&2"});
  cfg.set_stdin(true);
  cfg.set_stdin_once(true);
  std::string reader = e.run(cfg);
  r = runProgram({client, "exec", attachUrl(e.d, reader, true, true, true, false), "hello\n"}, 60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stdout=\"got:hello\\n\""), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("stderr=\"bye\\n\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"status\":\"Success\""), std::string::npos) << r.out;

  std::string reply;
  for (int i = 0; i < 50 && reply.find("hello-upstream") == std::string::npos; ++i) {
    r = runProgram({client, "forward", portForwardUrl(e.d, e.pod, {8080}), "8080"}, 60);
    reply = r.out;
    if (reply.find("hello-upstream") == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply << r.err;
  EXPECT_NE(reply.find("hello-upstream"), std::string::npos) << reply << r.err;
  std::filesystem::remove_all(client.substr(0, client.rfind('/')));
}

}  // namespace
}  // namespace berth::testing

namespace berth::testing {
namespace {

// Issue 13: WebSocket with every subprotocol Kubernetes' stream server accepts. The node
// conformance spec "Pods should support remote command execution over websockets" offers
// channel.k8s.io alone, which berth refused.

// Offers exactly `name` ("" offers none: no Sec-WebSocket-Protocol header).
std::vector<std::string> offer(std::string_view name) {
  return name.empty() ? std::vector<std::string>{} : std::vector<std::string>{std::string(name)};
}

std::string traceName(std::string_view protocol) {
  return protocol.empty() ? "no subprotocol" : "subprotocol " + std::string(protocol);
}

TEST(StreamingWebSocketTest, TheConformanceSpecsExecRequest) {
  PodEnv e("ws-conformance");
  std::string id = e.run(e.containerConfig(
      "main", {"/bin/sh", "-c", "echo container is alive; sleep 600"}));
  // What kubelet asks for on the spec's behalf: command=echo&command=remote execution test,
  // stdout=1, stderr=1, no stdin, no terminal.
  std::string url = execUrl(e.d, id, {"echo", "remote execution test"}, false, true, true, false);
  // The spec's client: a GET upgrade offering channel.k8s.io and nothing else.
  auto up = streaming::upgrade(url, Transport::kWebSocket, {"channel.k8s.io"});
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_EQ(up->status, 101) << up->body;
  EXPECT_EQ(up->protocol, "channel.k8s.io");
  // The spec's reader: every message until the end; anything but stdout must be empty (a
  // single channel byte), else the spec fails ("didn't start with channel 1").
  streaming::WsParser parser;
  std::string buf, chunk;
  up->conn->setReadTimeout(30000);
  bool closed = false;
  while (!closed) {
    streaming::WsFrame f;
    bool got = false;
    ASSERT_TRUE(parser.next(&f, &got).ok());
    if (!got) {
      if (!up->conn->readSome(&chunk)) break;
      parser.feed(chunk);
      continue;
    }
    if (f.opcode == streaming::WsOpcode::kClose) {
      closed = true;
      continue;
    }
    ASSERT_EQ(f.opcode, streaming::WsOpcode::kBinary);
    if (f.payload.empty()) continue;
    if (f.payload[0] != 1) {
      EXPECT_EQ(f.payload.size(), 1u) << "a message on channel " << int(f.payload[0]) << ": "
                                      << f.payload.substr(1);
      continue;
    }
    buf += f.payload.substr(1);
  }
  EXPECT_TRUE(closed);  // a close frame: Go's websocket reader turns it into io.EOF
  EXPECT_EQ(buf, "remote execution test\n");
}

TEST(StreamingWebSocketTest, ExecWithEverySubprotocol) {
  PodEnv e("ws-exec");
  std::string id = e.run(e.containerConfig("box"));
  for (const auto& p : streaming::wsCommandProtocols()) {
    SCOPED_TRACE(traceName(p.name));
    const std::vector<std::string> cmd = {
        "sh", "-c", "read -r line; echo \"got:$line\"; echo err >&2; exit 3"};
    std::string url = execUrl(e.d, id, cmd, true, true, true, false);
    auto c = CommandClient::connect(url, {.stdin = true, .transport = Transport::kWebSocket,
                                          .ws_protocols = offer(p.name)});
    ASSERT_TRUE(c.ok()) << c.status();
    Output o;
    // Binary stdin through the channel byte or base64 alike.
    auto r = runSession(**c, &o, [&] { (*c)->writeStdin("a\tb\\c\n"); });
    EXPECT_EQ(r.protocol, p.name);
    EXPECT_EQ(o.out, "got:a\tb\\c\n");
    EXPECT_EQ(o.err, "err\n");
    const std::string message =
        "command terminated with non-zero exit code: error executing command [" +
        absl::StrJoin(cmd, " ") + "], exit code 3";
    if (p.statusJson()) {
      EXPECT_EQ(r.exit_code, 3) << r.status_json;
      EXPECT_EQ(r.message, message);
    } else {
      // Before v4 the error channel carries the Status message as plain text.
      EXPECT_EQ(r.status_json, message);
    }

    // Success: a Status from v4 on, nothing at all before.
    url = execUrl(e.d, id, {"echo", "fine"}, false, true, true, false);
    c = CommandClient::connect(url, {.transport = Transport::kWebSocket,
                                     .ws_protocols = offer(p.name)});
    ASSERT_TRUE(c.ok()) << c.status();
    o = {};
    r = runSession(**c, &o);
    EXPECT_EQ(o.out, "fine\n");
    EXPECT_EQ(r.exit_code, 0) << r.status_json;
    EXPECT_EQ(r.status_json, p.statusJson() ? R"({"metadata":{},"status":"Success"})" : "");
  }
}

TEST(StreamingWebSocketTest, AttachWithEverySubprotocol) {
  PodEnv e("ws-attach");
  int n = 0;
  for (const auto& p : streaming::wsCommandProtocols()) {
    SCOPED_TRACE(traceName(p.name));
    // A container that waits for a line on its stdin, answers on both outputs and ends.
    auto cfg = e.containerConfig("reader" + std::to_string(n++),
                                 {"sh", "-c", "read line; echo got:$line; echo bye >&2"});
    cfg.set_stdin(true);
    std::string id = e.run(cfg);
    auto c = CommandClient::connect(attachUrl(e.d, id, true, true, true, false),
                                    {.stdin = true, .transport = Transport::kWebSocket,
                                     .ws_protocols = offer(p.name)});
    ASSERT_TRUE(c.ok()) << c.status();
    Output o;
    auto r = runSession(**c, &o, [&] { (*c)->writeStdin("hello\n"); });
    EXPECT_EQ(r.protocol, p.name);
    EXPECT_EQ(o.out, "got:hello\n");
    EXPECT_EQ(o.err, "bye\n");
    EXPECT_EQ(r.exit_code, 0) << r.status_json;
    EXPECT_EQ(r.status_json, p.statusJson() ? R"({"metadata":{},"status":"Success"})" : "");
  }
}

}  // namespace
}  // namespace berth::testing
