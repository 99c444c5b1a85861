// The HTTP side of a streaming connection (internal to the server): reading the request, short
// answers, and once the request's token was taken, the upgrade to SPDY/3.1 or WebSocket and
// the exec, attach or port-forward session on it. Runs on the connection's thread.
#pragma once

#include <boost/beast/http.hpp>
#include <string>

#include "absl/time/time.h"
#include "streaming/conn.h"
#include "streaming/request_cache.h"
#include "streaming/server.h"

namespace berth::streaming {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Reads one HTTP request (16 KiB of headers, 64 KiB in all); `rest` gets the bytes after it.
// False when the connection ended or the request is malformed.
bool readRequest(ByteStream& io, HttpRequest* req, std::string* rest);

// A short text answer that closes the connection.
void respond(ByteStream& io, boost::beast::http::status status, const std::string& text);

struct SessionEnv {
  Backend& backend;
  absl::Duration stream_creation_timeout;
  int cancel_fd;  // readable once the server stops: sessions end
};

// Answers the upgrade of `req` (its token already taken, as `sreq`) and serves the session
// until it ends. `rest`: bytes the client sent after the request.
void serveUpgrade(ByteStream& conn, const HttpRequest& req, std::string rest, StreamRequest sreq,
                  const SessionEnv& env);

}  // namespace berth::streaming
