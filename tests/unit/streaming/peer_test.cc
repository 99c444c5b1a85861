// Who a streaming client is: local sockets by their owner's uid (whatever loopback address they
// use), remote ones by address (IPv6 by /64).
#include "streaming/peer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "test_util.h"

namespace berth::streaming {
namespace {

using testing::forkAs;
using testing::kNobody;
using testing::Pipe;
using testing::waitExit;

sockaddr_storage v4(const char* ip, int port) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in&>(ss);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(::inet_pton(AF_INET, ip, &a.sin_addr), 1) << ip;
  return ss;
}

sockaddr_storage v6(const char* ip, int port) {
  sockaddr_storage ss{};
  auto& a = reinterpret_cast<sockaddr_in6&>(ss);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(::inet_pton(AF_INET6, ip, &a.sin6_addr), 1) << ip;
  return ss;
}

// A listening socket on `addr` (port 0) and its port.
struct Listener {
  explicit Listener(const sockaddr_storage& addr) {
    fd.reset(::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage a = addr;
    socklen_t len = addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    ok = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) == 0 && ::listen(fd.get(), 8) == 0;
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
    port = ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(bound).sin_port
                                           : reinterpret_cast<sockaddr_in6&>(bound).sin6_port);
  }
  // Accepts one connection and identifies its peer.
  Peer acceptPeer() {
    sockaddr_storage remote{};
    socklen_t len = sizeof remote;
    UniqueFd c(::accept4(fd.get(), reinterpret_cast<sockaddr*>(&remote), &len, SOCK_CLOEXEC));
    EXPECT_TRUE(c.valid());
    return identifyPeer(c.get(), remote);
  }
  UniqueFd fd;
  bool ok = false;
  int port = 0;
};

// Connects from `from` (port 0) to `to`; the connection stays open while the child waits.
int connectFrom(const sockaddr_storage& from, const sockaddr_storage& to) {
  int fd = ::socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t len = to.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&from), len) != 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), len) != 0) return -1;
  return fd;
}

TEST(StreamingPeerTest, LocalClientsAreKnownByTheUidOwningTheirSocket) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
  Listener l(v4("127.0.0.1", 0));
  ASSERT_TRUE(l.ok);
  sockaddr_storage to = v4("127.0.0.1", l.port);

  UniqueFd mine(connectFrom(v4("127.0.0.1", 0), to));
  ASSERT_TRUE(mine.valid());
  Peer root = l.acceptPeer();
  EXPECT_EQ(root.uid, 0u);
  EXPECT_TRUE(root.privileged());
  EXPECT_EQ(root.key, "uid 0");
  EXPECT_EQ(root.address, "127.0.0.1");

  // Another user: another peer, even from the same address; and another loopback address
  // does not make it a third one.
  for (const char* from : {"127.0.0.1", "127.0.0.2"}) {
    Pipe hold;
    sockaddr_storage src = v4(from, 0);
    pid_t child = forkAs(kNobody, [&] {
      ::close(hold.w.get());  // the parent's end: its closing is the signal
      int fd = connectFrom(src, to);
      char c;
      (void)!::read(hold.r.get(), &c, 1);  // until the parent closes its end
      return fd >= 0 ? 0 : 1;
    });
    ASSERT_GT(child, 0);
    hold.r.reset();
    Peer other = l.acceptPeer();
    hold.w.reset();
    EXPECT_EQ(waitExit(child), 0);
    EXPECT_EQ(other.uid, kNobody) << from;
    EXPECT_FALSE(other.privileged());
    EXPECT_EQ(other.key, "uid 65534");
    EXPECT_EQ(other.address, from);
  }
}

TEST(StreamingPeerTest, Ipv6AndDualStackListenersFindTheOwnerToo) {
  Listener l6(v6("::1", 0));
  if (!l6.ok) GTEST_SKIP() << "no IPv6 loopback";
  UniqueFd a(connectFrom(v6("::1", 0), v6("::1", l6.port)));
  ASSERT_TRUE(a.valid());
  Peer p = l6.acceptPeer();
  EXPECT_EQ(p.uid, ::geteuid());
  EXPECT_EQ(p.address, "::1");

  // A dual-stack listener sees IPv4 clients as ::ffff:127.0.0.1; they are still IPv4 sockets.
  Listener any(v6("::", 0));
  ASSERT_TRUE(any.ok);
  UniqueFd b(connectFrom(v4("127.0.0.1", 0), v4("127.0.0.1", any.port)));
  ASSERT_TRUE(b.valid());
  Peer q = any.acceptPeer();
  EXPECT_EQ(q.uid, ::geteuid());
  EXPECT_EQ(q.address, "127.0.0.1");
  EXPECT_EQ(q.key, absl::StrCat("uid ", ::geteuid()));
}

TEST(StreamingPeerTest, NoLocalSocketMeansNoOwner) {
  // Nothing on this machine connects 127.0.0.1:1 to 127.0.0.1:2.
  auto owner = tcpSocketOwner(v4("127.0.0.1", 1), v4("127.0.0.1", 2));
  EXPECT_TRUE(absl::IsNotFound(owner.status())) << owner.status();
  // A listener on the peer's port is not the peer.
  Listener l(v4("127.0.0.1", 0));
  ASSERT_TRUE(l.ok);
  owner = tcpSocketOwner(v4("127.0.0.1", l.port), v4("127.0.0.1", 2));
  EXPECT_TRUE(absl::IsNotFound(owner.status())) << owner.status();
}

TEST(StreamingPeerTest, RemoteClientsAreKnownByAddress) {
  EXPECT_EQ(peerKey(v4("192.0.2.7", 40000), std::nullopt), "ip 192.0.2.7");
  EXPECT_EQ(peerKey(v6("::ffff:192.0.2.7", 40000), std::nullopt), "ip 192.0.2.7");
  // Every address of a /64 is one peer: one host can use them all.
  EXPECT_EQ(peerKey(v6("2001:db8:1:2:3:4:5:6", 1), std::nullopt), "ip 2001:db8:1:2::/64");
  EXPECT_EQ(peerKey(v6("2001:db8:1:2:ffff::1", 1), std::nullopt), "ip 2001:db8:1:2::/64");
  EXPECT_EQ(peerKey(v4("192.0.2.7", 1), 1000u), "uid 1000");
}

}  // namespace
}  // namespace berth::streaming
