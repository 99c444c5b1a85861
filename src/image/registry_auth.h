// Registry authentication pieces: credentials, WWW-Authenticate challenges, bearer token
// responses and a token cache. Pure logic; the HTTP exchanges live in registry_client.cc.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace berth::image {

// Credentials for one registry, as kubelet's AuthConfig carries them.
struct Credentials {
  std::string username;
  std::string password;
  std::string auth;            // base64("username:password"); used when username is empty
  std::string identity_token;  // OAuth2 refresh token, exchanged at the token realm
  std::string registry_token;  // a bearer token sent to the registry as it is

  bool empty() const {
    return username.empty() && password.empty() && auth.empty() && identity_token.empty() &&
           registry_token.empty();
  }
  bool operator==(const Credentials&) const = default;
};

// Returns `creds` with `auth` decoded into username and password (when username is empty).
// InvalidArgument when `auth` is not base64 of "user:password".
[[nodiscard]] absl::StatusOr<Credentials> normalizeCredentials(const Credentials& creds);

// A short stable key that tells credential sets apart without holding secrets.
std::string credentialsKey(const Credentials& creds);

std::string base64Encode(absl::string_view data);
// InvalidArgument on malformed input.
[[nodiscard]] absl::StatusOr<std::string> base64Decode(absl::string_view data);

// The value of an Authorization header for HTTP Basic auth.
std::string basicAuthorization(absl::string_view username, absl::string_view password);

// One challenge of a WWW-Authenticate header (RFC 7235).
struct AuthChallenge {
  std::string scheme;                         // lowercased: "basic", "bearer", …
  std::map<std::string, std::string> params;  // names lowercased; quoted values unescaped

  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
  bool operator==(const AuthChallenge&) const = default;
};

// Parses every challenge in a WWW-Authenticate header value, e.g.
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="…"
// Malformed parts are skipped; it never fails.
std::vector<AuthChallenge> parseWwwAuthenticate(absl::string_view header);

// A token from a token server (docker token auth or OAuth2).
struct BearerToken {
  std::string token;
  absl::Duration expires_in;
};

// Parses a token server's JSON answer ({"token"|"access_token", "expires_in"}). A missing or
// short expires_in counts as 60 s, as in the docker token spec.
[[nodiscard]] absl::StatusOr<BearerToken> parseTokenResponse(absl::string_view body);

// Percent-encodes a query or form value (RFC 3986 unreserved characters pass through).
std::string urlEncode(absl::string_view s);

// Authorization header values by (host, scope, credentials key). Thread-safe.
class TokenCache {
 public:
  using Clock = absl::Time (*)();
  explicit TokenCache(Clock now = &absl::Now) : now_(now) {}

  std::optional<std::string> get(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  void put(const std::string& key, std::string authorization, absl::Time expiry)
      ABSL_LOCKS_EXCLUDED(mu_);
  void erase(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::string authorization;
    absl::Time expiry;
  };
  static constexpr size_t kPruneAbove = 1024;

  const Clock now_;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::image
