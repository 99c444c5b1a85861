// Content digests ("sha256:<64 hex>") and a streaming SHA-256.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::image {

// A validated digest. Only sha256 is accepted (what OCI registries and images use).
class Digest {
 public:
  // InvalidArgument names the text when it is not "sha256:" followed by 64 lowercase hex digits.
  [[nodiscard]] static absl::StatusOr<Digest> parse(absl::string_view text);
  static Digest fromHex(std::string hex) { return Digest(std::move(hex)); }  // hex must be valid

  const std::string& hex() const { return hex_; }
  std::string str() const { return "sha256:" + hex_; }
  bool operator==(const Digest&) const = default;
  bool operator<(const Digest& o) const { return hex_ < o.hex_; }

 private:
  explicit Digest(std::string hex) : hex_(std::move(hex)) {}
  std::string hex_;
};

// Incremental SHA-256. Not thread-safe; one per stream.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t len);
  void update(absl::string_view s) { update(s.data(), s.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  Digest finish();

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};

// SHA-256 of a whole string.
Digest sha256Of(absl::string_view data);

}  // namespace berth::image
