// Digest parsing and SHA-256 over OpenSSL's EVP interface.
#include "image/digest.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::image {

absl::StatusOr<Digest> Digest::parse(absl::string_view text) {
  constexpr absl::string_view kPrefix = "sha256:";
  if (!absl::StartsWith(text, kPrefix) || text.size() != kPrefix.size() + 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", text, "\": want sha256: and 64 hex digits"));
  }
  absl::string_view hex = text.substr(kPrefix.size());
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid digest \"", text, "\": not lowercase hex"));
    }
  }
  return Digest(std::string(hex));
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }

void Sha256::update(const void* data, size_t len) { EVP_DigestUpdate(ctx_.get(), data, len); }

Digest Sha256::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 0xf]);
  }
  return Digest::fromHex(std::move(hex));
}

Digest sha256Of(absl::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

}  // namespace berth::image
