// Issue 12 (points 7 and 8): an unprivileged local user must not be able to block exec, attach
// and port-forward for everyone. The attack runs against a real berthd as a user this test
// creates: 300 idle connections to the streaming port and guessed tokens. berthd stays up,
// root's (kubelet's) Exec works meanwhile, a session already open carries on, the extra
// connections are refused, idle ones are closed at the upgrade deadline, guessing gets 429.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pod_env.h"
#include "test_user.h"
#include "streaming/client.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;
using streaming::CommandClient;
using streaming::Transport;

int portOf(const std::string& url) {
  // http://127.0.0.1:PORT/exec/TOKEN
  size_t colon = url.find(':', url.find("//"));
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(url.substr(colon + 1, url.find('/', colon) - colon - 1), &port))
      << url;
  return port;
}

// --- The attacker: a forked child as the throwaway user. System calls only (the test process
// has threads), and none of the test's descriptors beyond two pipes (the CRI socket included).

constexpr int kConnections = 300;
constexpr int kGuesses = 15;
constexpr int kResultFd = 3, kGoFd = 4;

struct Tally {
  int open = 0, refused = 0, closed = 0, failed = 0;  // refused: an HTTP answer, then closed
};
struct Report {
  Tally flood, after_deadline;
  int guesses[kGuesses] = {};
};

int rawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The HTTP status a connection was answered with before it closed (0: none), or -1 while it
// is still open.
int statusOrOpen(int fd, int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, wait_ms) == 0) return -1;
  char buf[32] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  if (n < 12 || std::strncmp(buf, "HTTP/1.1 ", 9) != 0) return 0;
  return (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
}

Tally tally(const int* fds, int n) {
  Tally t;
  for (int i = 0; i < n; ++i) {
    int s = fds[i] < 0 ? -2 : statusOrOpen(fds[i], 0);
    if (s == -2) {
      ++t.failed;
    } else if (s == -1) {
      ++t.open;
    } else if (s > 0) {
      ++t.refused;
    } else {
      ++t.closed;
    }
  }
  return t;
}

void sleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

[[noreturn]] void attack(int port, const std::string& guess, long deadline_ms) {
  Report r;
  int fds[kConnections];
  for (int& fd : fds) fd = rawConnect(port);
  sleepMs(1500);  // refusals come at once; the deadline is further off
  r.flood = tally(fds, kConnections);
  (void)!::write(kResultFd, &r.flood, sizeof r.flood);
  char go;
  (void)!::read(kGoFd, &go, 1);  // the parent has run its Exec meanwhile
  sleepMs(deadline_ms + 3000);
  r.after_deadline = tally(fds, kConnections);
  for (int fd : fds) ::close(fd);
  for (int& code : r.guesses) {
    code = 0;
    int fd = rawConnect(port);
    if (fd < 0) continue;
    if (::send(fd, guess.data(), guess.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(guess.size())) {
      code = statusOrOpen(fd, 10000);
    }
    ::close(fd);
  }
  (void)!::write(kResultFd, &r.after_deadline, sizeof r.after_deadline);
  (void)!::write(kResultFd, r.guesses, sizeof r.guesses);
  ::_exit(0);
}

template <typename T>
bool readFull(int fd, T* out) {
  return ::read(fd, out, sizeof *out) == static_cast<ssize_t>(sizeof *out);
}

// Runs `cmd` through a fresh Exec URL and returns its stdout.
std::string execOutput(PodEnv& e, const std::string& id, Transport t) {
  std::string url =
      execUrl(e.d, id, {"sh", "-c", "echo hello from root"}, false, true, true, false);
  auto c = CommandClient::connect(url, {.stdout = true, .stderr = true, .transport = t});
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return "";
  std::string out;
  auto r = (*c)->run([&](int ch, std::string_view data) {
    if (ch == 1) out.append(data);
  });
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) {
    EXPECT_EQ(r->exit_code, 0) << r->status_json;
  }
  return out;
}

TEST(StreamingSecurityTest, AnUnprivilegedUserCannotBlockOrGuessStreams) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a user";
  constexpr int kDeadlineS = 5;
  PodEnv e("streamsec", absl::StrCat("[streaming]\nupgrade_timeout_seconds = ", kDeadlineS,
                                     "\nmax_pending_per_peer = 16\n"));
  std::string id = e.run(e.containerConfig("box"));
  TestUser user;
  ASSERT_TRUE(user.ok());

  // A session that is open before the attack and must carry on through it.
  std::string cat_url = execUrl(e.d, id, {"cat"}, true, true, true, false);
  auto cat = CommandClient::connect(cat_url, {.stdin = true, .stdout = true, .stderr = true});
  ASSERT_TRUE(cat.ok()) << cat.status();
  std::string cat_out;
  absl::StatusOr<streaming::CommandResult> cat_result;
  std::thread cat_reader([&] {
    cat_result = (*cat)->run([&](int ch, std::string_view d) {
      if (ch == 1) cat_out.append(d);
    });
  });
  ASSERT_TRUE((*cat)->writeStdin("before\n"));

  int port = portOf(cat_url);
  const std::string guess =
      absl::StrCat("GET /exec/AAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: 127.0.0.1:", port, "\r\n\r\n");
  int result[2], go[2];
  ASSERT_EQ(::pipe2(result, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  pid_t child = ::fork();
  if (child == 0) {
    // Keep only the two pipes, then become the user: no way back to root's descriptors.
    int r = ::fcntl(result[1], F_DUPFD, 10), g = ::fcntl(go[0], F_DUPFD, 10);
    if (r < 0 || g < 0 || ::dup2(r, kResultFd) < 0 || ::dup2(g, kGoFd) < 0) ::_exit(120);
    ::syscall(SYS_close_range, kGoFd + 1, ~0U, 0);
    if (::setgroups(0, nullptr) != 0 || ::setgid(user.gid()) != 0 || ::setuid(user.uid()) != 0) {
      ::_exit(121);
    }
    attack(port, guess, kDeadlineS * 1000L);
  }
  ASSERT_GT(child, 0);
  ::close(result[1]);
  ::close(go[0]);
  struct Reap {  // the attacker ends with the test, whatever happens
    pid_t pid;
    int go_w, result_r;
    ~Reap() {
      ::close(go_w);
      ::close(result_r);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{child, go[1], result[0]};

  Report r;
  ASSERT_TRUE(readFull(result[0], &r.flood)) << "the attacker died";
  // Its 17th and later connections were answered and closed at once.
  EXPECT_EQ(r.flood.open, 16) << "refused " << r.flood.refused << ", closed " << r.flood.closed
                              << ", failed " << r.flood.failed;
  EXPECT_GE(r.flood.refused, kConnections - 16 - r.flood.failed);
  // While its connections wait: root's Exec through fresh URLs works, over both protocols.
  EXPECT_EQ(execOutput(e, id, Transport::kSpdy), "hello from root\n");
  EXPECT_EQ(execOutput(e, id, Transport::kWebSocket), "hello from root\n");
  ASSERT_EQ(::write(go[1], "g", 1), 1);

  ASSERT_TRUE(readFull(result[0], &r.after_deadline)) << "the attacker died";
  EXPECT_EQ(r.after_deadline.open, 0) << "idle connections outlived the upgrade deadline";
  ASSERT_TRUE(readFull(result[0], &r.guesses));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r.guesses[i], 404) << "guess " << i;
  for (int i = 10; i < kGuesses; ++i) EXPECT_EQ(r.guesses[i], 429) << "guess " << i;

  // berthd is alive and serving; the session from before the attack still works.
  EXPECT_EQ(::kill(e.d.pid(), 0), 0);
  v1::VersionRequest vreq;
  v1::VersionResponse vresp;
  auto ctx = Berthd::context(10);
  EXPECT_TRUE(e.d.runtime().Version(ctx.get(), vreq, &vresp).ok());
  EXPECT_EQ(execOutput(e, id, Transport::kSpdy), "hello from root\n");
  ASSERT_TRUE((*cat)->writeStdin("after\n"));
  ASSERT_TRUE((*cat)->closeStdin());
  cat_reader.join();
  ASSERT_TRUE(cat_result.ok()) << cat_result.status();
  EXPECT_EQ(cat_result->exit_code, 0) << cat_result->status_json;
  EXPECT_EQ(cat_out, "before\nafter\n");
}

TEST(StreamingSecurityTest, AWildcardAddressIsLoggedAsBoundWithAWarning) {
  Berthd d("[streaming]\naddress = \"0.0.0.0\"\n");
  ASSERT_TRUE(d.start()) << d.log();
  std::string log = d.log();
  // The real address, not the loopback one URLs use; and the warning about plain HTTP.
  EXPECT_NE(log.find("listening on 0.0.0.0:"), std::string::npos) << log;
  EXPECT_NE(log.find("unencrypted on 0.0.0.0:"), std::string::npos) << log;

  Berthd local;
  ASSERT_TRUE(local.start()) << local.log();
  EXPECT_NE(local.log().find("listening on 127.0.0.1:"), std::string::npos) << local.log();
  EXPECT_EQ(local.log().find("unencrypted"), std::string::npos) << local.log();
}

}  // namespace
}  // namespace berth::testing
