// The HTTP endpoint Prometheus scrapes: GET /metrics on a TCP address, one small thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "metrics/listen_address.h"

namespace berth::metrics {

// What the endpoint answers to one request; routing apart from sockets, for tests.
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string allow;  // the Allow header of a 405
};

// GET /metrics (any query string) → 200 with `render()` in text format 0.0.4; another method
// on /metrics → 405; any other path → 404. An exception from `render` becomes a 500.
HttpReply routeMetricsRequest(std::string_view method, std::string_view target,
                              const std::function<std::string()>& render);

struct HttpServerOptions {
  // Bound on reading one request and writing its reply, and on an idle kept-alive connection.
  absl::Duration io_timeout = absl::Seconds(10);
  // Connections beyond this are closed at once (scrapers are few).
  int max_connections = 16;
};

// Serves the endpoint with Boost.Beast on one thread of its own, which also runs `render`.
// Created and destroyed by one owner thread.
class MetricsHttpServer {
 public:
  // Binds `address` and starts the thread. Unavailable when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> start(
      const ListenAddress& address, std::function<std::string()> render,
      HttpServerOptions options = {});
  // Stops accepting, drops open connections and joins the thread.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound port (the chosen one when the address asked for port 0).
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace berth::metrics
