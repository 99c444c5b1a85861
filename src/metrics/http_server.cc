// The /metrics endpoint on Boost.Beast: asynchronous operations run by one thread, so a slow
// or idle client times out without holding up other scrapes.
#include "metrics/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "metrics/exposition.h"

namespace berth::metrics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::shared_ptr<spdlog::logger> log() {
  static const auto logger = logging::get("metrics");
  return logger;
}

}  // namespace

HttpReply routeMetricsRequest(std::string_view method, std::string_view target,
                              const std::function<std::string()>& render) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") {
    return {.status = 404,
            .content_type = "text/plain; charset=utf-8",
            .body = "404 page not found: only /metrics is served here\n"};
  }
  if (method != "GET") {
    return {.status = 405,
            .content_type = "text/plain; charset=utf-8",
            .body = "405 method not allowed: use GET\n",
            .allow = "GET"};
  }
  try {
    return {.status = 200, .content_type = std::string(kExpositionContentType), .body = render()};
  } catch (const std::exception& e) {
    return {.status = 500,
            .content_type = "text/plain; charset=utf-8",
            .body = absl::StrCat("500 internal error: ", e.what(), "\n")};
  }
}

// State below is used only by the server thread, except `ioc` (stop() and post() are
// thread-safe). Members are destroyed in reverse order: the io_context (and with it every
// pending session) before the fields sessions use.
struct MetricsHttpServer::Impl {
  explicit Impl(std::function<std::string()> r, HttpServerOptions o)
      : render(std::move(r)), options(o) {}

  void accept();
  void run();

  const std::function<std::string()> render;
  const HttpServerOptions options;
  int connections = 0;
  // Accept errors are retried every 200 ms: warn at most every 10 s, with the count left out.
  std::chrono::steady_clock::time_point last_accept_warning =
      std::chrono::steady_clock::now() - std::chrono::minutes(1);
  uint64_t accept_errors_unlogged = 0;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer retry{ioc};
  std::thread thread;
};

namespace {

// One connection: read a request, answer it, and again while the client keeps it alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>& render,
          const HttpServerOptions& options, int& connections)
      : stream_(std::move(socket)), render_(render), options_(options), connections_(connections) {
    ++connections_;
  }
  ~Session() { --connections_; }

  void read() {
    request_ = {};
    stream_.expires_after(absl::ToChronoMilliseconds(options_.io_timeout));
    http::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

 private:
  void onRead(beast::error_code ec) {
    if (ec) return close();  // the client closed, timed out or sent something unreadable
    HttpReply reply = routeMetricsRequest(
        std::string_view(request_.method_string().data(), request_.method_string().size()),
        std::string_view(request_.target().data(), request_.target().size()), render_);
    response_ = {};
    response_.version(request_.version());
    response_.result(static_cast<unsigned>(reply.status));
    response_.set(http::field::server, "berthd");
    response_.set(http::field::content_type, reply.content_type);
    if (!reply.allow.empty()) response_.set(http::field::allow, reply.allow);
    response_.body() = std::move(reply.body);
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    stream_.expires_after(absl::ToChronoMilliseconds(options_.io_timeout));
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onWrite(ec); });
  }

  void onWrite(beast::error_code ec) {
    if (ec || !response_.keep_alive()) return close();
    read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const std::function<std::string()>& render_;
  const HttpServerOptions& options_;
  int& connections_;
};

}  // namespace

void MetricsHttpServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;  // stopping
    if (ec) {
      // Out of descriptors or similar: try again shortly instead of spinning.
      auto now = std::chrono::steady_clock::now();
      if (now - last_accept_warning >= std::chrono::seconds(10)) {
        log()->warn("metrics endpoint: accept: {} ({} more such errors since the last warning)",
                    ec.message(), accept_errors_unlogged);
        last_accept_warning = now;
        accept_errors_unlogged = 0;
      } else {
        ++accept_errors_unlogged;
      }
      retry.expires_after(std::chrono::milliseconds(200));
      retry.async_wait([this](beast::error_code) { accept(); });
      return;
    }
    if (connections < options.max_connections) {
      std::make_shared<Session>(std::move(socket), render, options, connections)->read();
    }  // else the socket closes here
    accept();
  });
}

void MetricsHttpServer::Impl::run() {
  for (;;) {
    try {
      ioc.run();
      return;  // stopped
    } catch (const std::exception& e) {
      log()->error("metrics endpoint: {}", e.what());
    } catch (...) {
      log()->error("metrics endpoint: unexpected exception");
    }
  }
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::start(
    const ListenAddress& address, std::function<std::string()> render, HttpServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(render), options);
  beast::error_code ec;
  asio::ip::address ip = asio::ip::make_address(address.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address: \"", address.host, "\" is not an IP address"));
  }
  tcp::endpoint endpoint(ip, address.port);
  std::string where = absl::StrCat(endpoint.address().to_string(), ":", address.port);
  auto failed = [&](absl::string_view step) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", where, ": ", step, ": ", ec.message()));
  };
  if (impl->acceptor.open(endpoint.protocol(), ec); ec) return failed("socket");
  if (impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return failed("SO_REUSEADDR");
  }
  if (impl->acceptor.bind(endpoint, ec); ec) return failed("bind");
  if (impl->acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return failed("listen");
  }
  uint16_t port = impl->acceptor.local_endpoint(ec).port();
  if (ec) return failed("local address");
  impl->accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(std::move(impl)));
  server->port_ = port;
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (!impl_) return;
  // run() returns as soon as the handler in progress (if any) is done; the acceptor, the
  // timer and every session then go with impl_, their pending handlers never run.
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace berth::metrics
