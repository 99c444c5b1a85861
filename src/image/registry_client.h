// The OCI distribution (registry v2) client: manifests and blobs over HTTP(S), with mirrors,
// Basic and Bearer token auth, retries and a token cache. Shared by concurrent pulls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "image/reference.h"
#include "image/registry_auth.h"
#include "image/registry_hosts.h"

namespace berth::image {

inline constexpr absl::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr absl::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr absl::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr absl::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

// True for an OCI index or a Docker manifest list.
bool isIndexMediaType(absl::string_view media_type);

struct Manifest {
  std::string media_type;  // one of the four kMediaType* values
  std::string digest;      // "sha256:…" of body
  std::string body;
};

class HttpClient;
struct HttpRequest;
struct HttpResult;

// Thread-safe: every method may be called from any thread at once. No lock is held while a
// transfer runs.
class RegistryClient {
 public:
  using ChunkSink = std::function<absl::Status(const char* data, size_t len)>;
  using Progress = std::function<void(uint64_t bytes_so_far)>;

  explicit RegistryClient(RegistryOptions options);
  // The options in use; calls already under way keep those they began with.
  std::shared_ptr<const RegistryOptions> options() const;
  // Replaces them (SIGHUP): the next call uses these.
  void setOptions(RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // The manifest (or index) that `ref` names: by its digest when it has one (the body is then
  // checked against it), else by its tag. `creds` win over configured host credentials.
  // NotFound: `image "<ref>" not found`; Unauthenticated / PermissionDenied: pull access
  // denied; Unavailable: no endpoint could be reached; DataLoss: the body does not match the
  // digest; FailedPrecondition: an unsupported manifest type (e.g. Docker schema 1).
  [[nodiscard]] absl::StatusOr<Manifest> fetchManifest(const Reference& ref,
                                                       const Credentials& creds);

  // The manifest `digest` in the repository of `repo` (its tag and digest are ignored).
  [[nodiscard]] absl::StatusOr<Manifest> fetchManifestByDigest(const Reference& repo,
                                                               const std::string& digest,
                                                               const Credentials& creds);

  // Streams the blob `digest` of the repository of `repo` to `sink`, chunk by chunk. A sink
  // error aborts the transfer and is returned as it is. `progress` (may be empty) gets the
  // total bytes delivered so far. A broken transfer is resumed with a Range request, so the
  // sink sees every byte exactly once, in order. The caller verifies the digest. A layer has
  // blob_timeout_s in all, anything else (a config) request_timeout_s: DeadlineExceeded.
  enum class BlobKind { kLayer, kSmall };
  [[nodiscard]] absl::Status fetchBlob(const Reference& repo, const std::string& digest,
                                       const Credentials& creds, const ChunkSink& sink,
                                       const Progress& progress,
                                       BlobKind kind = BlobKind::kLayer);

 private:
  struct Call;  // one logical request against one repository

  absl::StatusOr<Manifest> fetchManifestImpl(const Reference& repo, const std::string& reference,
                                             const std::string& expected_digest,
                                             const std::string& what, const Credentials& creds);
  // Tries each endpoint of the repository's domain in turn.
  absl::StatusOr<HttpResult> onEndpoints(Call& call);
  // One endpoint: auth challenge handling and retries.
  absl::StatusOr<HttpResult> onEndpoint(Call& call, const RegistryEndpoint& ep);
  absl::StatusOr<std::string> authorize(const Call& call, const RegistryEndpoint& ep,
                                        const HttpResult& challenge_response, absl::Time* expiry);
  absl::StatusOr<std::string> fetchToken(const Call& call, const RegistryEndpoint& ep,
                                         const AuthChallenge& challenge, absl::Time* expiry);
  static absl::StatusOr<Credentials> effectiveCredentials(const RegistryOptions& opts,
                                                          const std::string& domain,
                                                          const Credentials& request_creds);
  absl::Status statusForCode(const Call& call, const RegistryEndpoint& ep,
                             const HttpResult& res) const;
  static absl::Status combineFailures(
      const std::vector<std::pair<std::string, absl::Status>>& failures);

  mutable absl::Mutex options_mu_;
  std::shared_ptr<const RegistryOptions> options_ ABSL_GUARDED_BY(options_mu_);
  const std::unique_ptr<HttpClient> http_;
  TokenCache tokens_;
};

}  // namespace berth::image
