// Who is at the other end of a streaming connection. Limits are kept per peer: a remote peer is
// its IP address (an IPv6 /64, which one host usually owns whole); a peer on this machine is
// the uid owning its socket, whatever local address it used, so that a local user cannot spend
// the budget of kubelet, whose connections come from 127.0.0.1 too.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace berth::streaming {

struct Peer {
  std::string address;          // "192.0.2.7", "2001:db8::1"; IPv4-mapped IPv6 as IPv4
  std::optional<uint32_t> uid;  // owner of the peer's socket when it is on this machine
  std::string key;              // "uid 1000", "ip 192.0.2.7", "ip 2001:db8:0:1::/64"

  // A local socket of root (kubelet, crictl run by root, berthctl as root).
  bool privileged() const { return uid == 0u; }
};

// The budget key of a peer at `remote` whose socket is owned by `uid` (if it is local).
std::string peerKey(const sockaddr_storage& remote, std::optional<uint32_t> uid);

// The owner of the TCP socket of this network namespace bound to `src` and connected to `dst`
// (the peer's side of an accepted connection: src = the peer, dst = our local address), as
// NETLINK_SOCK_DIAG reports it. NotFound when no such socket exists here (the peer is remote).
[[nodiscard]] absl::StatusOr<uint32_t> tcpSocketOwner(const sockaddr_storage& src,
                                                      const sockaddr_storage& dst);

// The peer of the accepted socket `fd`, whose remote address accept() gave as `remote`.
// A failed owner lookup leaves `uid` empty: the peer is then known by its address only.
Peer identifyPeer(int fd, const sockaddr_storage& remote);

}  // namespace berth::streaming
