// Registry v2 client: endpoint fall-through, auth challenges, retries, manifest checks.
#include "image/registry_client.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/status.h"
#include "image/digest.h"
#include "image/registry_http.h"

namespace berth::image {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxTokenBytes = 1 << 20;
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(200);
constexpr absl::Duration kMaxBackoff = absl::Seconds(10);
constexpr absl::Duration kBasicAuthCacheFor = absl::Hours(1);
constexpr absl::Duration kRegistryTokenCacheFor = absl::Minutes(1);

std::shared_ptr<spdlog::logger> logger() {
  static const std::shared_ptr<spdlog::logger> l = logging::get("registry");
  return l;
}

bool knownManifestType(absl::string_view t) {
  return t == kMediaTypeOciManifest || t == kMediaTypeOciIndex || t == kMediaTypeDockerManifest ||
         t == kMediaTypeDockerManifestList;
}

// Waits before attempt `attempt` + 1; honours a 429's Retry-After (in seconds) within limits,
// and never past `deadline`.
void backoff(int attempt, const HttpResult* res, absl::Time deadline) {
  absl::Duration wait = kFirstBackoff * (1 << std::min(attempt, 6));
  int64_t retry_after = 0;
  if (res != nullptr && absl::SimpleAtoi(res->header("retry-after"), &retry_after) &&
      retry_after > 0) {
    wait = absl::Seconds(retry_after);
  }
  absl::SleepFor(std::min({wait, kMaxBackoff, deadline - absl::Now()}));
}

// "CODE: message" from a registry error body ({"errors":[{"code","message"}]}), else a short
// excerpt of the body.
std::string errorSummary(const std::string& body) {
  if (auto j = parseUntrustedJson(body, "error body", body.size()); j.ok()) {
    try {
      const auto& e = j->at("errors").at(0);
      return absl::StrCat(e.value("code", std::string()), ": ",
                          e.value("message", std::string()));
    } catch (const nlohmann::json::exception&) {
    }
  }
  std::string excerpt = body.substr(0, 200);
  for (char& c : excerpt) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) c = ' ';
  }
  return std::string(absl::StripAsciiWhitespace(excerpt));
}

// The media type of a manifest body: its Content-Type when that is a type we read, else its
// own mediaType field, else guessed from its shape.
absl::StatusOr<std::string> manifestMediaType(const std::string& content_type,
                                              const std::string& body, const std::string& what) {
  std::string ct(absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';'))));
  auto parsed = parseUntrustedJson(body, absl::StrCat("manifest of ", what), kMaxManifestBytes);
  if (!parsed.ok()) return absl::DataLossError(parsed.status().message());
  nlohmann::json j = *std::move(parsed);
  if (!j.is_object()) {
    return absl::DataLossError(absl::StrCat("manifest of ", what, " is not a JSON object"));
  }
  if (j.value("schemaVersion", 0) == 1 ||
      absl::StartsWith(ct, "application/vnd.docker.distribution.manifest.v1+")) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": Docker schema 1 manifests are not supported"));
  }
  if (knownManifestType(ct)) return ct;
  std::string own;
  if (auto it = j.find("mediaType"); it != j.end() && it->is_string()) own = it->get<std::string>();
  if (knownManifestType(own)) return own;
  if (own.empty() && j.contains("manifests")) return std::string(kMediaTypeOciIndex);
  if (own.empty() && j.contains("layers")) return std::string(kMediaTypeOciManifest);
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": unsupported manifest media type \"", own.empty() ? ct : own, "\""));
}

}  // namespace

bool isIndexMediaType(absl::string_view media_type) {
  return media_type == kMediaTypeOciIndex || media_type == kMediaTypeDockerManifestList;
}

// One logical request (a manifest or a blob of one repository), carried across endpoints and
// attempts.
struct RegistryClient::Call {
  std::shared_ptr<const RegistryOptions> opts;  // as they were when the call began (reloads)
  const Reference* repo = nullptr;
  std::string suffix;     // "manifests/<tag|digest>" or "blobs/<digest>"
  std::string what;       // for messages: image "<ref>", blob "<digest>" of <repo>
  std::string not_found;  // the NotFound message
  std::string scope;      // "repository:<path>:pull"
  Credentials creds;      // effective, normalised
  std::vector<std::string> headers;
  bool is_blob = false;
  const ChunkSink* sink = nullptr;
  const Progress* progress = nullptr;
  uint64_t delivered = 0;  // bytes the sink has accepted, over all attempts
  bool sink_failed = false;
  std::function<absl::Status(const HttpResult&)> check;  // validates a 2xx answer
  absl::Time deadline = absl::InfiniteFuture();  // for every attempt on every endpoint
  std::string deadline_key;  // the config key that sets it, for the message
  int deadline_s = 0;
};

RegistryClient::RegistryClient(RegistryOptions options)
    : options_(std::make_shared<const RegistryOptions>(std::move(options))),
      http_(std::make_unique<HttpClient>(options_->user_agent)) {}

std::shared_ptr<const RegistryOptions> RegistryClient::options() const {
  absl::MutexLock lock(&options_mu_);
  return options_;
}

void RegistryClient::setOptions(RegistryOptions options) {
  auto next = std::make_shared<const RegistryOptions>(std::move(options));
  absl::MutexLock lock(&options_mu_);
  options_ = std::move(next);
}

RegistryClient::~RegistryClient() = default;

absl::StatusOr<Credentials> RegistryClient::effectiveCredentials(const RegistryOptions& opts,
                                                                 const std::string& domain,
                                                                 const Credentials& request_creds) {
  if (!request_creds.empty()) return normalizeCredentials(request_creds);
  auto it = opts.hosts.find(domain);
  if (it == opts.hosts.end()) return Credentials{};
  return normalizeCredentials(it->second.credentials);
}

absl::StatusOr<Manifest> RegistryClient::fetchManifest(const Reference& ref,
                                                       const Credentials& creds) {
  const std::string& reference = ref.digest.empty() ? ref.tag : ref.digest;
  if (reference.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image \"", ref.repository(), "\" has neither tag nor digest"));
  }
  return fetchManifestImpl(ref, reference, ref.digest, absl::StrCat("image \"", ref.str(), "\""),
                           creds);
}

absl::StatusOr<Manifest> RegistryClient::fetchManifestByDigest(const Reference& repo,
                                                               const std::string& digest,
                                                               const Credentials& creds) {
  BERTH_RETURN_IF_ERROR(Digest::parse(digest).status());
  return fetchManifestImpl(repo, digest, digest,
                           absl::StrCat("manifest \"", digest, "\" of ", repo.repository()), creds);
}

absl::StatusOr<Manifest> RegistryClient::fetchManifestImpl(const Reference& repo,
                                                           const std::string& reference,
                                                           const std::string& expected_digest,
                                                           const std::string& what,
                                                           const Credentials& creds) {
  Call call;
  call.opts = options();
  call.repo = &repo;
  call.suffix = absl::StrCat("manifests/", reference);
  call.what = what;
  call.not_found = absl::StrCat(what, " not found");
  call.scope = absl::StrCat("repository:", repo.path, ":pull");
  BERTH_ASSIGN_OR_RETURN(call.creds, effectiveCredentials(*call.opts, repo.domain, creds));
  call.headers.push_back(absl::StrCat(
      "Accept: ", absl::StrJoin({kMediaTypeOciManifest, kMediaTypeOciIndex,
                                 kMediaTypeDockerManifest, kMediaTypeDockerManifestList},
                                ", ")));
  call.deadline_s = call.opts->request_timeout_s;
  call.deadline_key = "image.request_timeout_seconds";
  call.deadline = absl::Now() + absl::Seconds(call.deadline_s);
  Manifest manifest;
  call.check = [&](const HttpResult& res) -> absl::Status {
    std::string digest = sha256Of(res.body).str();
    if (!expected_digest.empty() && digest != expected_digest) {
      return absl::DataLossError(absl::StrCat("manifest of ", what, " has digest ", digest,
                                              ", expected ", expected_digest));
    }
    BERTH_ASSIGN_OR_RETURN(manifest.media_type,
                           manifestMediaType(res.header("content-type"), res.body, what));
    manifest.digest = std::move(digest);
    return absl::OkStatus();
  };
  BERTH_ASSIGN_OR_RETURN(HttpResult res, onEndpoints(call));
  manifest.body = std::move(res.body);
  return manifest;
}

absl::Status RegistryClient::fetchBlob(const Reference& repo, const std::string& digest,
                                       const Credentials& creds, const ChunkSink& sink,
                                       const Progress& progress, BlobKind kind) {
  BERTH_RETURN_IF_ERROR(Digest::parse(digest).status());
  Call call;
  call.opts = options();
  call.repo = &repo;
  call.suffix = absl::StrCat("blobs/", digest);
  call.what = absl::StrCat("blob \"", digest, "\" of ", repo.repository());
  call.not_found = absl::StrCat(call.what, " not found");
  call.scope = absl::StrCat("repository:", repo.path, ":pull");
  BERTH_ASSIGN_OR_RETURN(call.creds, effectiveCredentials(*call.opts, repo.domain, creds));
  call.is_blob = true;
  call.sink = &sink;
  call.progress = progress ? &progress : nullptr;
  const bool layer = kind == BlobKind::kLayer;
  call.deadline_s = layer ? call.opts->blob_timeout_s : call.opts->request_timeout_s;
  call.deadline_key = layer ? "image.blob_timeout_seconds" : "image.request_timeout_seconds";
  call.deadline = absl::Now() + absl::Seconds(call.deadline_s);
  return onEndpoints(call).status();
}

absl::StatusOr<HttpResult> RegistryClient::onEndpoints(Call& call) {
  BERTH_ASSIGN_OR_RETURN(std::vector<RegistryEndpoint> all,
                         resolveEndpoints(*call.opts, call.repo->domain));
  // A tag's manifest is resolved; manifests by digest and blobs are pulled (hosts.toml's
  // capabilities).
  const bool resolving =
      absl::StartsWith(call.suffix, "manifests/") && !absl::StrContains(call.suffix, ":");
  std::vector<RegistryEndpoint> endpoints;
  for (RegistryEndpoint& ep : all) {
    if (resolving ? ep.can_resolve : ep.can_pull) endpoints.push_back(std::move(ep));
  }
  if (endpoints.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(call.what, ": no endpoint of ", call.repo->domain, " may ",
                     resolving ? "resolve tags" : "pull", " (capabilities in its hosts.toml)"));
  }
  std::vector<std::pair<std::string, absl::Status>> failures;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    absl::StatusOr<HttpResult> res = onEndpoint(call, endpoints[i]);
    if (res.ok() || call.sink_failed) return res;
    if (i + 1 < endpoints.size()) {
      logger()->warn("{}: endpoint {} failed, trying the next one: {}", call.what,
                     endpoints[i].baseUrl(), res.status().ToString());
    }
    failures.emplace_back(endpoints[i].baseUrl(), res.status());
  }
  return combineFailures(failures);
}

absl::Status RegistryClient::combineFailures(
    const std::vector<std::pair<std::string, absl::Status>>& failures) {
  if (failures.size() == 1) return failures[0].second;
  // Every endpoint is named with what it said: the reason a pull fails is often at a mirror
  // tried first (a 404, a 401), not at the last one (unreachable from this node). The code is
  // that of the answer that tells the most: one about the image itself (not found, bad
  // content) before a refusal (a mirror that is not ours to use), before a transport failure.
  auto rank = [](const absl::Status& st) {
    if (absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st)) return 2;
    if (absl::IsUnauthenticated(st) || absl::IsPermissionDenied(st)) return 1;
    return 0;
  };
  const absl::Status* chosen = &failures.back().second;
  for (const auto& [url, st] : failures) {
    if (rank(st) < rank(*chosen)) chosen = &st;
  }
  std::vector<std::string> parts;
  for (const auto& [url, st] : failures) parts.push_back(absl::StrCat(url, ": ", st.message()));
  return absl::Status(chosen->code(), absl::StrCat("every endpoint failed: ",
                                                   absl::StrJoin(parts, "; ")));
}

absl::StatusOr<HttpResult> RegistryClient::onEndpoint(Call& call, const RegistryEndpoint& ep) {
  const std::string cache_key = absl::StrCat(ep.scheme(), "://", ep.host, ep.path_prefix, "|",
                                             call.scope, "|", credentialsKey(call.creds));
  std::optional<std::string> authorization = tokens_.get(cache_key);
  bool challenged = false;
  int attempt = 0;
  while (true) {
    absl::Duration left = call.deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(call.what, " did not arrive within ", call.deadline_s, " s (",
                       call.deadline_key, ") from ", ep.host));
    }
    HttpRequest req;
    req.url = absl::StrCat(ep.baseUrl(), call.repo->path, "/", call.suffix);
    req.headers = call.headers;
    req.headers.insert(req.headers.end(), ep.headers.begin(), ep.headers.end());
    if (authorization) req.headers.push_back(absl::StrCat("Authorization: ", *authorization));
    req.skip_verify = ep.skip_verify;
    req.ca_file = ep.ca_file;
    req.client_cert = ep.client_cert;
    req.client_key = ep.client_key;
    req.connect_timeout_s = call.opts->connect_timeout_s;
    req.low_speed_time_s = call.opts->progress_timeout_s;
    req.low_speed_bps = call.opts->min_rate_bps;
    req.timeout_ms = std::max<int64_t>(absl::ToInt64Milliseconds(left), 1);
    req.max_body = kMaxManifestBytes;
    std::optional<BodySink> sink;
    if (call.is_blob) {
      req.follow_redirects = true;
      req.resume_from = call.delivered;
      sink = [&call, total = call.delivered](const char* data, size_t len) mutable {
        BERTH_RETURN_IF_ERROR((*call.sink)(data, len));
        total += len;
        if (call.progress != nullptr) (*call.progress)(total);
        return absl::OkStatus();
      };
    }

    HttpResult res = http_->perform(req, sink ? &*sink : nullptr);
    call.delivered += res.delivered;
    if (res.sink_failed) {
      call.sink_failed = true;
      return res.status;
    }
    if (!res.status.ok()) {
      if (res.retryable && attempt < call.opts->retries) {
        logger()->info("{}: attempt {} failed, retrying: {}", call.what, attempt + 1,
                       res.status.ToString());
        backoff(attempt++, nullptr, call.deadline);
        continue;
      }
      return annotate(res.status, call.what);
    }
    if (res.code == 401 && !challenged) {
      challenged = true;
      tokens_.erase(cache_key);
      absl::Time expiry;
      BERTH_ASSIGN_OR_RETURN(std::string auth, authorize(call, ep, res, &expiry));
      tokens_.put(cache_key, auth, expiry);
      authorization = std::move(auth);
      continue;
    }
    if (res.code == 401) tokens_.erase(cache_key);
    if ((res.code == 429 || res.code >= 500) && attempt < call.opts->retries) {
      logger()->info("{}: registry {} answered {}, retrying", call.what, ep.host, res.code);
      backoff(attempt++, &res, call.deadline);
      continue;
    }
    if (res.code >= 200 && res.code < 300) {
      if (call.check) BERTH_RETURN_IF_ERROR(call.check(res));
      return res;
    }
    return statusForCode(call, ep, res);
  }
}

absl::Status RegistryClient::statusForCode(const Call& call, const RegistryEndpoint& ep,
                                           const HttpResult& res) const {
  const std::string repo = call.repo->repository();
  switch (res.code) {
    case 401:
      return absl::UnauthenticatedError(
          absl::StrCat("pull access denied for ", repo, ": ",
                       call.creds.empty() ? "authentication required" : "invalid credentials",
                       " (registry ", ep.host, ")"));
    case 403:
      return absl::PermissionDeniedError(
          absl::StrCat("pull access denied for ", repo, ": forbidden (registry ", ep.host, ")"));
    case 404:
      return absl::NotFoundError(call.not_found);
    case 400:
      return absl::InvalidArgumentError(absl::StrCat("registry ", ep.host, " rejected ", call.what,
                                                     ": ", errorSummary(res.body)));
    default:
      break;
  }
  if (res.code == 429 || res.code >= 500) {
    return absl::UnavailableError(
        absl::StrCat("registry ", ep.host, " answered ", res.code, " for ", call.what, " after ",
                     call.opts->retries + 1, " attempts: ", errorSummary(res.body)));
  }
  return absl::InternalError(absl::StrCat("registry ", ep.host, " answered ", res.code, " for ",
                                          call.what, ": ", errorSummary(res.body)));
}

absl::StatusOr<std::string> RegistryClient::authorize(const Call& call, const RegistryEndpoint& ep,
                                                      const HttpResult& res, absl::Time* expiry) {
  std::vector<AuthChallenge> challenges;
  for (const std::string& value : res.headerValues("www-authenticate")) {
    for (AuthChallenge& c : parseWwwAuthenticate(value)) challenges.push_back(std::move(c));
  }
  auto find = [&](absl::string_view scheme) -> const AuthChallenge* {
    for (const AuthChallenge& c : challenges) {
      if (c.scheme == scheme) return &c;
    }
    return nullptr;
  };
  const std::string repo = call.repo->repository();
  if (const AuthChallenge* bearer = find("bearer")) {
    if (!call.creds.registry_token.empty()) {
      *expiry = absl::Now() + kRegistryTokenCacheFor;
      return absl::StrCat("Bearer ", call.creds.registry_token);
    }
    return fetchToken(call, ep, *bearer, expiry);
  }
  if (find("basic") != nullptr) {
    if (call.creds.username.empty()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "pull access denied for ", repo, ": authentication required (registry ", ep.host, ")"));
    }
    *expiry = absl::Now() + kBasicAuthCacheFor;
    return basicAuthorization(call.creds.username, call.creds.password);
  }
  std::vector<std::string> schemes;
  schemes.reserve(challenges.size());
  for (const AuthChallenge& c : challenges) schemes.push_back(c.scheme);
  return absl::UnauthenticatedError(absl::StrCat("pull access denied for ", repo, ": registry ",
                                                 ep.host, " asks for unsupported authentication [",
                                                 absl::StrJoin(schemes, ", "), "]"));
}

absl::StatusOr<std::string> RegistryClient::fetchToken(const Call& call, const RegistryEndpoint& ep,
                                                       const AuthChallenge& challenge,
                                                       absl::Time* expiry) {
  const std::string repo = call.repo->repository();
  const std::string realm = challenge.param("realm");
  if (realm.empty()) {
    return absl::UnauthenticatedError(absl::StrCat("pull access denied for ", repo, ": registry ",
                                                   ep.host,
                                                   " sent a bearer challenge "
                                                   "without a realm"));
  }
  const std::string service = challenge.param("service");
  const std::string scope =
      challenge.param("scope").empty() ? call.scope : challenge.param("scope");
  const Credentials& creds = call.creds;

  HttpRequest req;
  req.skip_verify = ep.skip_verify;
  req.ca_file = ep.ca_file;
  req.client_cert = ep.client_cert;
  req.client_key = ep.client_key;
  req.connect_timeout_s = call.opts->connect_timeout_s;
  req.low_speed_time_s = call.opts->progress_timeout_s;
  req.low_speed_bps = call.opts->min_rate_bps;
  // A token is part of the call it authorises, within that call's deadline and its own.
  const absl::Time deadline =
      std::min(call.deadline, absl::Now() + absl::Seconds(call.opts->request_timeout_s));
  req.max_body = kMaxTokenBytes;
  req.follow_redirects = true;
  if (!creds.identity_token.empty()) {
    // OAuth2 refresh-token grant, as docker does with an identity token.
    req.method = "POST";
    req.url = realm;
    req.headers.emplace_back("Content-Type: application/x-www-form-urlencoded");
    req.body = absl::StrCat("grant_type=refresh_token&client_id=berth&service=", urlEncode(service),
                            "&scope=", urlEncode(scope),
                            "&refresh_token=", urlEncode(creds.identity_token));
  } else {
    req.url = absl::StrCat(realm, realm.find('?') == std::string::npos ? "?" : "&",
                           "service=", urlEncode(service), "&scope=", urlEncode(scope));
    if (!creds.username.empty()) {
      absl::StrAppend(&req.url, "&account=", urlEncode(creds.username));
      req.headers.push_back(
          absl::StrCat("Authorization: ", basicAuthorization(creds.username, creds.password)));
    }
  }

  const std::string token_host = urlHost(realm);
  for (int attempt = 0;; ++attempt) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "token server ", token_host, " did not answer for ", repo, " in time (",
          "image.request_timeout_seconds)"));
    }
    req.timeout_ms = std::max<int64_t>(absl::ToInt64Milliseconds(left), 1);
    HttpResult res = http_->perform(req, nullptr);
    bool transient = res.status.ok() ? (res.code == 429 || res.code >= 500) : res.retryable;
    if (transient && attempt < call.opts->retries) {
      backoff(attempt, &res, deadline);
      continue;
    }
    if (!res.status.ok()) return annotate(res.status, absl::StrCat("token for ", repo));
    if (res.code == 401 || res.code == 403) {
      return absl::UnauthenticatedError(
          absl::StrCat("pull access denied for ", repo, ": ",
                       creds.empty() ? "authentication required" : "invalid credentials",
                       " (token server ", token_host, " answered ", res.code, ")"));
    }
    if (res.code != 200) {
      return absl::UnavailableError(absl::StrCat("token server ", token_host, " answered ",
                                                 res.code, " for ", repo, ": ",
                                                 errorSummary(res.body)));
    }
    auto token = parseTokenResponse(res.body);
    if (!token.ok()) {
      return absl::UnavailableError(
          absl::StrCat("token server ", token_host, " for ", repo, ": ", token.status().message()));
    }
    *expiry = absl::Now() + token->expires_in * 9 / 10;
    return absl::StrCat("Bearer ", token->token);
  }
}

}  // namespace berth::image
