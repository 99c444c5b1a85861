// Credentials, WWW-Authenticate parsing, token responses and the token cache.
#include "image/registry_auth.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/json_text.h"
#include "image/digest.h"

namespace berth::image {

std::string base64Encode(absl::string_view data) { return absl::Base64Escape(data); }

absl::StatusOr<std::string> base64Decode(absl::string_view data) {
  std::string out;
  absl::string_view trimmed = absl::StripAsciiWhitespace(data);
  if (!absl::Base64Unescape(trimmed, &out)) {
    return absl::InvalidArgumentError("malformed base64 data");
  }
  return out;
}

std::string basicAuthorization(absl::string_view username, absl::string_view password) {
  return absl::StrCat("Basic ", base64Encode(absl::StrCat(username, ":", password)));
}

absl::StatusOr<Credentials> normalizeCredentials(const Credentials& creds) {
  Credentials out = creds;
  if (out.username.empty() && !out.auth.empty()) {
    auto decoded = base64Decode(out.auth);
    if (!decoded.ok()) {
      return absl::InvalidArgumentError("invalid registry credentials: auth is not base64");
    }
    size_t colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(
          "invalid registry credentials: auth is not base64 of \"username:password\"");
    }
    out.username = decoded->substr(0, colon);
    out.password = decoded->substr(colon + 1);
  }
  out.auth.clear();
  return out;
}

std::string credentialsKey(const Credentials& creds) {
  if (creds.empty()) return "anonymous";
  Sha256 h;
  for (const std::string* s : {&creds.username, &creds.password, &creds.auth, &creds.identity_token,
                               &creds.registry_token}) {
    h.update(*s);
    h.update("\0", 1);
  }
  return h.finish().hex().substr(0, 24);
}

namespace {

bool isTchar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

// A cursor over a header value.
class Scanner {
 public:
  explicit Scanner(absl::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void next() { ++i_; }
  size_t pos() const { return i_; }
  void seek(size_t i) { i_ = i; }
  void skipSpace() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  std::string token() {
    size_t start = i_;
    while (!done() && isTchar(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  // A quoted-string (after the opening quote has been seen) with backslash escapes.
  std::string quoted() {
    std::string out;
    next();  // opening quote
    while (!done() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out.push_back(s_[i_++]);
    }
    if (!done()) next();  // closing quote
    return out;
  }
  // Lenient unquoted value: anything up to a comma or white space.
  std::string bareValue() {
    size_t start = i_;
    while (!done() && s_[i_] != ',' && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  void skipToComma() {
    while (!done() && s_[i_] != ',') ++i_;
  }

 private:
  absl::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::vector<AuthChallenge> parseWwwAuthenticate(absl::string_view header) {
  std::vector<AuthChallenge> out;
  Scanner sc(header);
  while (true) {
    while (!sc.done() && (sc.peek() == ',' || sc.peek() == ' ' || sc.peek() == '\t')) sc.next();
    if (sc.done()) break;
    std::string scheme = sc.token();
    if (scheme.empty()) {  // not a token: skip this list element
      sc.skipToComma();
      continue;
    }
    AuthChallenge challenge{absl::AsciiStrToLower(scheme), {}};
    // auth-params: name = value, separated by commas. A token not followed by '=' starts the
    // next challenge.
    while (true) {
      sc.skipSpace();
      if (sc.done()) break;
      if (sc.peek() == ',') {
        sc.next();
        continue;
      }
      size_t start = sc.pos();
      std::string name = sc.token();
      sc.skipSpace();
      if (name.empty()) {  // junk: skip the element
        sc.skipToComma();
        continue;
      }
      if (sc.peek() != '=') {
        sc.seek(start);
        break;
      }
      sc.next();
      sc.skipSpace();
      if (sc.peek() == '=' || sc.peek() == ',' || sc.done()) {
        // token68 padding ("abc==") or an empty value: not a parameter we use.
        sc.skipToComma();
        continue;
      }
      std::string value = sc.peek() == '"' ? sc.quoted() : sc.bareValue();
      challenge.params[absl::AsciiStrToLower(name)] = std::move(value);
    }
    out.push_back(std::move(challenge));
  }
  return out;
}

absl::StatusOr<BearerToken> parseTokenResponse(absl::string_view body) {
  constexpr int64_t kMinExpiresIn = 60;
  constexpr size_t kMaxTokenResponse = 1 << 20;
  auto parsed = parseUntrustedJson(body, "malformed token response: the body", kMaxTokenResponse);
  if (!parsed.ok()) return parsed.status();
  nlohmann::json j = *std::move(parsed);
  if (!j.is_object()) return absl::InvalidArgumentError("malformed token response: not an object");
  BearerToken out;
  for (const char* key : {"token", "access_token"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) {
      out.token = it->get<std::string>();
      break;
    }
  }
  if (out.token.empty()) return absl::InvalidArgumentError("token response carries no token");
  int64_t expires = kMinExpiresIn;
  if (auto it = j.find("expires_in"); it != j.end() && it->is_number_integer()) {
    expires = std::max<int64_t>(it->get<int64_t>(), kMinExpiresIn);
  }
  out.expires_in = absl::Seconds(expires);
  return out;
}

std::string urlEncode(absl::string_view s) {
  constexpr absl::string_view kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::optional<std::string> TokenCache::get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expiry <= now_()) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.authorization;
}

void TokenCache::put(const std::string& key, std::string authorization, absl::Time expiry) {
  absl::MutexLock lock(&mu_);
  if (entries_.size() >= kPruneAbove) {
    absl::Time now = now_();
    std::erase_if(entries_, [now](const auto& kv) { return kv.second.expiry <= now; });
    if (entries_.size() >= kPruneAbove) entries_.clear();  // bounded; tokens are re-fetched
  }
  entries_[key] = Entry{std::move(authorization), expiry};
}

void TokenCache::erase(const std::string& key) {
  absl::MutexLock lock(&mu_);
  entries_.erase(key);
}

}  // namespace berth::image
