// berthctl exec -i/-t, attach and port-forward: the CRI hands out a streaming URL and the
// session runs over SPDY (the default, as in crictl) or WebSocket (--transport websocket).
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/stream_commands.h"
#include "common/unique_fd.h"
#include "streaming/client.h"

namespace berth::cli {
namespace {

namespace v1 = runtime::v1;

std::atomic<bool> g_winch{false};
void onWinch(int) { g_winch = true; }

// Puts the local terminal in raw mode for the session; restores it on destruction.
class RawTerminal {
 public:
  RawTerminal() {
    if (::isatty(STDIN_FILENO) == 0 || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

bool terminalSize(uint16_t* w, uint16_t* h) {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return false;
  *w = ws.ws_col;
  *h = ws.ws_row;
  return true;
}

absl::StatusOr<streaming::Transport> transportOf(const std::string& name) {
  if (name == "spdy") return streaming::Transport::kSpdy;
  if (name == "websocket") return streaming::Transport::kWebSocket;
  return absl::InvalidArgumentError("--transport must be spdy or websocket, not \"" + name + "\"");
}

// Runs a remote command session against `url` with the local stdio; returns its exit code.
int runSession(const std::string& url, bool in, bool tty, streaming::Transport transport) {
  streaming::CommandOptions opts{.stdin = in, .stdout = true, .stderr = !tty, .tty = tty,
                                 .transport = transport};
  auto client = streaming::CommandClient::connect(url, opts);
  if (!client.ok()) {
    std::cerr << "streaming session: " << client.status().message() << "\n";
    return 1;
  }
  streaming::CommandClient& c = **client;
  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    raw = std::make_unique<RawTerminal>();
    uint16_t w, h;
    if (terminalSize(&w, &h)) c.resize(w, h);
    ::signal(SIGWINCH, onWinch);
  }
  std::atomic<bool> done{false};
  if (in) {
    // Detached: it may sit in read() when the session ends; the process exits then.
    std::thread([&c, &done, tty] {
      char buf[4096];
      for (;;) {
        pollfd p{STDIN_FILENO, POLLIN, 0};
        int r = ::poll(&p, 1, 200);
        if (done) return;
        if (tty && g_winch.exchange(false)) {
          uint16_t w, h;
          if (terminalSize(&w, &h)) c.resize(w, h);
        }
        if (r <= 0) continue;
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) {
          c.closeStdin();
          return;
        }
        if (!c.writeStdin(std::string_view(buf, static_cast<size_t>(n)))) return;
      }
    }).detach();
  }
  auto result = c.run([](int channel, std::string_view data) {
    std::FILE* f = channel == 1 ? stdout : stderr;
    std::fwrite(data.data(), 1, data.size(), f);
    std::fflush(f);
  });
  done = true;
  raw.reset();
  if (!result.ok()) {
    std::cerr << "streaming session: " << result.status().message() << "\n";
    return 1;
  }
  if (result->exit_code < 0) {
    std::cerr << result->message << "\n";
    return 1;
  }
  return result->exit_code;
}

}  // namespace

namespace v1 = runtime::v1;

int runStreamingExec(const GlobalOptions& options, const std::string& id,
                     const std::vector<std::string>& cmd, bool interactive, bool tty,
                     const std::string& transport_name) {
  auto transport = transportOf(transport_name);
  if (!transport.ok()) {
    std::cerr << transport.status().message() << "\n";
    return 2;
  }
  Client client(options);
  v1::ExecRequest req;
  req.set_container_id(id);
  for (const auto& a : cmd) req.add_cmd(a);
  req.set_stdin(interactive);
  req.set_stdout(true);
  req.set_stderr(!tty);
  req.set_tty(tty);
  v1::ExecResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().Exec(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("Exec", st);
  return runSession(resp.url(), interactive, tty, *transport);
}

namespace {

struct AttachArgs {
  std::string id;
  bool interactive = false, tty = false;
  std::string transport = "spdy";
};

int runAttach(const GlobalOptions& options, const AttachArgs& args) {
  auto transport = transportOf(args.transport);
  if (!transport.ok()) {
    std::cerr << transport.status().message() << "\n";
    return 2;
  }
  Client client(options);
  v1::AttachRequest req;
  req.set_container_id(args.id);
  req.set_stdin(args.interactive);
  req.set_stdout(true);
  req.set_stderr(!args.tty);
  req.set_tty(args.tty);
  v1::AttachResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().Attach(ctx.get(), req, &resp);
  if (!st.ok()) return reportFailure("Attach", st);
  return runSession(resp.url(), args.interactive, args.tty, *transport);
}

struct PortForwardArgs {
  std::string pod;
  std::vector<std::string> specs;  // LOCAL:REMOTE or PORT
  std::string address = "127.0.0.1";
  std::string transport = "spdy";
};

// Bridges one accepted local connection to the pod's port through a session of its own.
void forwardOne(const GlobalOptions& options, const std::string& pod, int32_t port,
                streaming::Transport transport, UniqueFd local) {
  Client client(options);
  v1::PortForwardRequest req;
  req.set_pod_sandbox_id(pod);
  req.add_port(port);
  v1::PortForwardResponse resp;
  auto ctx = client.context();
  grpc::Status st = client.runtime().PortForward(ctx.get(), req, &resp);
  if (!st.ok()) {
    reportFailure("PortForward", st);
    return;
  }
  auto pf = streaming::PortForwardClient::connect(resp.url(), transport, port);
  if (!pf.ok()) {
    std::cerr << "port-forward: " << pf.status().message() << "\n";
    return;
  }
  streaming::PortForwardClient& c = **pf;
  int fd = local.get();
  std::thread up([&c, fd] {
    char buf[32 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (!c.write(std::string_view(buf, static_cast<size_t>(n)))) break;
    }
    c.closeWrite();
  });
  std::string error_text;
  absl::Status read = c.readEach(
      [fd](std::string_view bytes) {
        while (!bytes.empty()) {
          ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
          if (n <= 0) return false;
          bytes.remove_prefix(static_cast<size_t>(n));
        }
        return true;
      },
      &error_text, absl::InfiniteDuration());
  if (!read.ok()) std::cerr << "port-forward: " << read.message() << "\n";
  c.close();
  ::shutdown(fd, SHUT_RDWR);
  up.join();
  if (!error_text.empty()) std::cerr << "port-forward: " << error_text << "\n";
}

int runPortForward(const GlobalOptions& options, const PortForwardArgs& args) {
  auto transport = transportOf(args.transport);
  if (!transport.ok()) {
    std::cerr << transport.status().message() << "\n";
    return 2;
  }
  // As crictl does: over WebSocket, port-forward tunnels SPDY (SPDY/3.1+portforward.k8s.io).
  streaming::Transport t = *transport == streaming::Transport::kWebSocket
                               ? streaming::Transport::kSpdyInWebSocket
                               : *transport;
  if (args.specs.size() != 1) {
    std::cerr << "port-forward takes one LOCAL:REMOTE (or PORT) per invocation\n";
    return 2;
  }
  std::vector<std::string> parts = absl::StrSplit(args.specs[0], ':');
  int32_t local = 0, remote = 0;
  if (parts.size() > 2 || !absl::SimpleAtoi(parts.back(), &remote) ||
      (parts.size() == 2 && !parts[0].empty() && !absl::SimpleAtoi(parts[0], &local)) ||
      remote <= 0 || remote > 65535 || local < 0 || local > 65535) {
    std::cerr << "bad port spec \"" << args.specs[0] << "\" (LOCAL:REMOTE, :REMOTE or PORT)\n";
    return 2;
  }
  if (parts.size() == 1) local = remote;
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(local));
  if (::inet_pton(AF_INET, args.address.c_str(), &addr.sin_addr) != 1) {
    std::cerr << "--address must be an IPv4 address\n";
    return 2;
  }
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 16) != 0) {
    std::cerr << "listen on " << args.address << ":" << local << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::cout << "Forwarding from " << args.address << ":" << ntohs(addr.sin_port) << " -> "
            << remote << std::endl;
  for (;;) {
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      std::cerr << "accept: " << std::strerror(errno) << "\n";
      return 1;
    }
    std::thread(forwardOne, options, args.pod, remote, t, UniqueFd(fd)).detach();
  }
}

}  // namespace

void addStreamCommands(CLI::App& app, const GlobalOptions& options, int& exit_code) {
  auto attach_args = std::make_shared<AttachArgs>();
  auto* attach = app.add_subcommand("attach", "Attach to a running container's stdio (Attach)");
  attach->add_option("container", attach_args->id, "container id or unique prefix")->required();
  attach->add_flag("-i,--stdin", attach_args->interactive, "send stdin to the container");
  attach->add_flag("-t,--tty", attach_args->tty, "the container has a terminal");
  attach->add_option("--transport", attach_args->transport, "spdy (default) or websocket");
  attach->callback([&, attach_args] { exit_code = runAttach(options, *attach_args); });

  auto pf_args = std::make_shared<PortForwardArgs>();
  auto* pf = app.add_subcommand("port-forward", "Forward a local port to a pod's port (PortForward)");
  pf->add_option("pod", pf_args->pod, "pod id or unique prefix")->required();
  pf->add_option("ports", pf_args->specs, "LOCAL:REMOTE, :REMOTE (a free local port) or PORT")
      ->required();
  pf->add_option("--address", pf_args->address, "local address to listen on (127.0.0.1)");
  pf->add_option("--transport", pf_args->transport, "spdy (default) or websocket");
  pf->callback([&, pf_args] { exit_code = runPortForward(options, *pf_args); });
}

}  // namespace berth::cli
