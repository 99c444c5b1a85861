#include "streaming/peer.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::streaming {
namespace {

// An address and port, IPv4-mapped IPv6 addresses turned into IPv4 (a dual-stack listener
// sees IPv4 clients that way; the kernel keeps their sockets as IPv4).
struct Endpoint {
  int family = AF_UNSPEC;
  unsigned char addr[16] = {};  // 4 bytes for AF_INET
  uint16_t port_be = 0;         // network byte order
};

Endpoint endpointOf(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    e.family = AF_INET;
    std::memcpy(e.addr, &a.sin_addr, 4);
    e.port_be = a.sin_port;
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    e.port_be = a.sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&a.sin6_addr)) {
      e.family = AF_INET;
      std::memcpy(e.addr, a.sin6_addr.s6_addr + 12, 4);
    } else {
      e.family = AF_INET6;
      std::memcpy(e.addr, a.sin6_addr.s6_addr, 16);
    }
  }
  return e;
}

std::string addressText(const Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (e.family == AF_UNSPEC || ::inet_ntop(e.family, e.addr, buf, sizeof buf) == nullptr) {
    return "unknown";
  }
  return buf;
}

}  // namespace

std::string peerKey(const sockaddr_storage& remote, std::optional<uint32_t> uid) {
  if (uid.has_value()) return absl::StrCat("uid ", *uid);
  Endpoint e = endpointOf(remote);
  if (e.family != AF_INET6) return absl::StrCat("ip ", addressText(e));
  // One host usually owns a whole /64 and can pick any address in it.
  std::memset(e.addr + 8, 0, 8);
  return absl::StrCat("ip ", addressText(e), "/64");
}

absl::StatusOr<uint32_t> tcpSocketOwner(const sockaddr_storage& src, const sockaddr_storage& dst) {
  Endpoint s = endpointOf(src), d = endpointOf(dst);
  if (s.family == AF_UNSPEC || s.family != d.family) {
    return absl::InvalidArgumentError("socket owner lookup: not a TCP/IP address pair");
  }
  size_t addr_len = s.family == AF_INET ? 4 : 16;
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;  // one socket by its exact 4-tuple, not a dump
  msg.req.sdiag_family = static_cast<uint8_t>(s.family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  msg.req.id.idiag_sport = s.port_be;
  msg.req.id.idiag_dport = d.port_be;
  std::memcpy(msg.req.id.idiag_src, s.addr, addr_len);
  std::memcpy(msg.req.id.idiag_dst, d.addr, addr_len);
  msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return lastErrnoStatus("socket(NETLINK_SOCK_DIAG)");
  timeval tv{1, 0};  // the kernel answers at once; never hang the accept loop on it
  ::setsockopt(nl.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) <
      0) {
    return lastErrnoStatus("send a sock_diag request");
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n;
  do {
    n = ::recv(nl.get(), buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return lastErrnoStatus("read the sock_diag answer");
  // NLMSG_OK() compares signed with unsigned: walk the messages by hand.
  for (size_t off = 0; off + sizeof(nlmsghdr) <= static_cast<size_t>(n);) {
    const auto* h = reinterpret_cast<const nlmsghdr*>(buf + off);
    if (h->nlmsg_len < sizeof(nlmsghdr) || off + h->nlmsg_len > static_cast<size_t>(n)) break;
    off += NLMSG_ALIGN(h->nlmsg_len);
    if (h->nlmsg_type == NLMSG_ERROR) {
      const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
      if (err->error == -ENOENT) return absl::NotFoundError("no local socket has that address");
      return errnoStatus(-err->error, "sock_diag lookup");
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
      continue;
    }
    const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
    // The kernel falls back to a listening socket on src's port when no connection matches;
    // only the connection itself says who the peer is.
    if (m->id.idiag_sport != s.port_be || m->id.idiag_dport != d.port_be ||
        std::memcmp(m->id.idiag_src, s.addr, addr_len) != 0 ||
        std::memcmp(m->id.idiag_dst, d.addr, addr_len) != 0) {
      return absl::NotFoundError("no local connection has that address");
    }
    return m->idiag_uid;
  }
  return absl::InternalError("sock_diag gave no answer");
}

Peer identifyPeer(int fd, const sockaddr_storage& remote) {
  Peer p;
  p.address = addressText(endpointOf(remote));
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    auto uid = tcpSocketOwner(remote, local);
    if (uid.ok()) {
      p.uid = *uid;
    } else if (!absl::IsNotFound(uid.status())) {
      static std::once_flag once;  // the same failure would repeat for every connection
      std::call_once(once, [&] {
        logging::get("streaming")
            ->warn(
                "streaming: cannot tell local users apart ({}); local peers share the "
                "limits of their address",
                uid.status().ToString());
      });
    }
  }
  p.key = peerKey(remote, p.uid);
  return p;
}

}  // namespace berth::streaming
