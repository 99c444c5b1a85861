// Parsing of listener addresses.
#include "metrics/listen_address.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace berth::metrics {
namespace {

absl::Status bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("address \"", text, "\" ", why));
}

}  // namespace

absl::StatusOr<ListenAddress> parseListenAddress(absl::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return bad(text, "must be host:port");
  absl::string_view host = text.substr(0, colon);
  absl::string_view port_text = text.substr(colon + 1);
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return bad(text, "needs a port between 0 and 65535");
  }
  ListenAddress out;
  out.port = static_cast<uint16_t>(port);
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (host.empty() && !bracketed) {
    out.host = "0.0.0.0";
    return out;
  }
  if (host == "localhost" && !bracketed) {
    out.host = "127.0.0.1";
    return out;
  }
  std::string h(host);
  unsigned char buf[16];
  bool v4 = ::inet_pton(AF_INET, h.c_str(), buf) == 1;
  bool v6 = ::inet_pton(AF_INET6, h.c_str(), buf) == 1;
  if (v6 && !bracketed) return bad(text, "must put an IPv6 address in brackets ([::1]:9101)");
  if (!(v4 && !bracketed) && !(v6 && bracketed)) {
    return bad(text, "must name an IP address or localhost as host");
  }
  out.host = std::move(h);
  return out;
}

}  // namespace berth::metrics
