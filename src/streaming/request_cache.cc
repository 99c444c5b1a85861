#include "streaming/request_cache.h"

#include <openssl/rand.h>

#include "absl/strings/str_cat.h"

namespace berth::streaming {

const char* kindOf(const StreamRequest& req) {
  switch (req.index()) {
    case 0:
      return "exec";
    case 1:
      return "attach";
    default:
      return "portforward";
  }
}

absl::StatusOr<std::string> newToken() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned char raw[12];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    return absl::UnavailableError("no random bytes for a streaming token (RAND_bytes failed)");
  }
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

void RequestCache::evictExpired(absl::Time now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    if (it != entries_.end() && it->second.expires > now) break;
    if (it != entries_.end()) entries_.erase(it);
    order_.pop_front();
  }
}

absl::StatusOr<std::string> RequestCache::insert(StreamRequest req) {
  absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  evictExpired(now);
  if (entries_.size() >= max_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "maximum number of in-flight requests exceeded (", max_, " streaming URLs unused)"));
  }
  std::string token;
  do {
    auto t = newToken();
    if (!t.ok()) return t.status();
    token = *std::move(t);
  } while (entries_.count(token) != 0);
  entries_.emplace(token, Entry{std::move(req), now + absl::Nanoseconds(ttl_ns_.load())});
  order_.push_back(token);
  return token;
}

std::optional<StreamRequest> RequestCache::consume(const std::string& token) {
  absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  evictExpired(now);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  // Expiry is checked per entry too: after a TTL change they need not expire in order.
  if (it->second.expires <= now) {
    entries_.erase(it);
    return std::nullopt;
  }
  StreamRequest req = std::move(it->second.req);
  entries_.erase(it);  // its place in order_ is skipped when it comes up
  return req;
}

size_t RequestCache::size() {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace berth::streaming
