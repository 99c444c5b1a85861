// The CRI socket's accept loop: the bound on open connections, refusals, errors it survives,
// the socket's mode and stopping.
#include "daemon/cri_listener.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace berth::daemon {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/berth-listener-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int connectTo(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the peer closed `fd` within `timeout_ms` (read returns EOF or a reset).
bool closedByPeer(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

// Stands in for gRPC: keeps what it is handed until the test closes it.
struct Sink {
  absl::Mutex mu;
  std::vector<int> fds ABSL_GUARDED_BY(mu);
  CriListener::Handoff handoff() {
    return [this](int fd) {
      absl::MutexLock lock(&mu);
      fds.push_back(fd);
    };
  }
  void closeAll() {
    absl::MutexLock lock(&mu);
    for (int fd : fds) ::close(fd);
    fds.clear();
  }
  ~Sink() { closeAll(); }
};

template <typename Pred>
bool eventually(Pred pred, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

TEST(ConnectionBoundTest, KeepsAReserveOfDescriptors) {
  struct Case {
    int max;
    rlim_t soft;
    int bound;
  };
  for (const Case& c :
       {Case{1024, 20000, 1024}, Case{1024, 1024, 768}, Case{64, 512, 64}, Case{1024, 512, 256},
        Case{1024, 100, 50}, Case{1, 20000, 1}, Case{1024, 1, 1}, Case{1000000, 1048576, 786432}}) {
    EXPECT_EQ(connectionBound(c.max, c.soft), c.bound) << c.max << " " << c.soft;
  }
}

TEST(ListenUnixTest, SocketIs0660FromTheStartWhateverTheUmask) {
  TempDir dir;
  std::string path = dir.path() + "/cri.sock";
  mode_t old = ::umask(0);  // the loosest umask: the mode must come from berthd alone
  auto fd = listenUnix(path, 123);
  ::umask(old);
  ASSERT_TRUE(fd.ok()) << fd.status();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 123u);
  int client = connectTo(path);
  EXPECT_GE(client, 0) << "listening";
  ::close(client);
  // A second bind on the same path fails and leaves the first socket alone.
  EXPECT_FALSE(listenUnix(path, 0).ok());
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(ConnectionTrackerTest, ForgetsClosedAndReusedDescriptors) {
  int a[2], b[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
  ConnectionTracker t;
  t.add(a[0]);
  t.add(b[0]);
  EXPECT_EQ(t.sweep(), 2u);
  ::close(a[0]);
  EXPECT_EQ(t.sweep(), 1u) << "closed";
  // b[0]'s number now names another socket: that is not the connection handed over.
  int reused[2];
  ::close(b[0]);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, reused), 0);
  ASSERT_TRUE(reused[0] == b[0] || reused[1] == b[0]) << "the lowest free number is reused";
  EXPECT_EQ(t.sweep(), 0u) << "reused by another inode";
  // Adding a reused number replaces the old entry instead of counting twice.
  t.add(reused[0]);
  t.add(reused[0]);
  EXPECT_EQ(t.size(), 1u);
  for (int fd : {a[1], b[1], reused[0], reused[1]}) ::close(fd);
}

TEST(CriListenerTest, RefusesBeyondTheBoundAndAcceptsAgainOnceConnectionsClose) {
  TempDir dir;
  std::string path = dir.path() + "/cri.sock";
  auto fd = listenUnix(path, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  Sink sink;
  auto listener =
      CriListener::start(std::move(*fd), sink.handoff(), CriListenerOptions{.max_connections = 3});
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::vector<int> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(connectTo(path));
  ASSERT_TRUE(eventually([&] {
    auto s = (*listener)->stats();
    return s.accepted + s.refused == 10;
  }));
  auto s = (*listener)->stats();
  EXPECT_EQ(s.accepted, 3u);
  EXPECT_EQ(s.refused, 7u);
  int refused = 0;
  for (int c : clients) refused += closedByPeer(c, 1000) ? 1 : 0;
  EXPECT_EQ(refused, 7) << "refused connections are closed at once";

  // "gRPC" closes its connections: new clients are taken again.
  sink.closeAll();
  int later = connectTo(path);
  ASSERT_GE(later, 0);
  EXPECT_TRUE(eventually([&] { return (*listener)->stats().accepted == 4; }));
  EXPECT_FALSE(closedByPeer(later, 200));
  for (int c : clients) ::close(c);
  ::close(later);
}

TEST(CriListenerTest, KeepsAcceptingAfterAnyAcceptError) {
  for (int err : {EMFILE, ENFILE, ENOBUFS, ENOMEM, EPROTO, EINVAL, EINTR, ECONNABORTED}) {
    TempDir dir;
    std::string path = dir.path() + "/cri.sock";
    auto fd = listenUnix(path, 0);
    ASSERT_TRUE(fd.ok()) << fd.status();
    Sink sink;
    std::atomic<int> failures_left{5};
    auto accept_fn = [&](int lfd) {
      if (failures_left.fetch_sub(1) > 0) {
        errno = err;
        return -1;
      }
      return ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    };
    auto listener = CriListener::start(std::move(*fd), sink.handoff(),
                                       CriListenerOptions{.max_connections = 8,
                                                          .min_backoff = absl::Milliseconds(1),
                                                          .max_backoff = absl::Milliseconds(4)},
                                       accept_fn);
    ASSERT_TRUE(listener.ok()) << listener.status();
    int client = connectTo(path);
    ASSERT_GE(client, 0);
    EXPECT_TRUE(eventually([&] { return (*listener)->stats().accepted == 1; })) << err;
    uint64_t errors = (*listener)->stats().accept_errors;
    bool retried_at_once = err == EINTR || err == ECONNABORTED;
    EXPECT_EQ(errors, retried_at_once ? 0u : 5u) << err;
    ::close(client);
  }
}

TEST(CriListenerTest, StopWakesTheLoopEvenDuringABackOff) {
  TempDir dir;
  std::string path = dir.path() + "/cri.sock";
  auto fd = listenUnix(path, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  Sink sink;
  auto listener = CriListener::start(
      std::move(*fd), sink.handoff(),
      CriListenerOptions{.min_backoff = absl::Seconds(60), .max_backoff = absl::Seconds(60)},
      [](int) {
        errno = EMFILE;
        return -1;
      });
  ASSERT_TRUE(listener.ok());
  int client = connectTo(path);
  ASSERT_TRUE(eventually([&] { return (*listener)->stats().accept_errors == 1; }));
  auto begin = std::chrono::steady_clock::now();
  (*listener)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(30));
  // The listening socket is closed: new connections are refused by the kernel.
  EXPECT_EQ(connectTo(path), -1);
  ::close(client);
}

}  // namespace
}  // namespace berth::daemon
