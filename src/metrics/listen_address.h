// "host:port" addresses for berthd's HTTP listeners (the metrics endpoint).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::metrics {

struct ListenAddress {
  std::string host;   // an IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;  // 0: any free port
};

// Accepts "127.0.0.1:9101", "[::1]:9101", "localhost:9101" (127.0.0.1) and ":9101" (every
// IPv4 address, 0.0.0.0). Host names other than localhost are refused: a listener must not
// depend on name resolution. InvalidArgument saying what is wrong otherwise.
[[nodiscard]] absl::StatusOr<ListenAddress> parseListenAddress(absl::string_view text);

}  // namespace berth::metrics
