// Reference parsing after github.com/distribution/reference (grammar.go, normalize.go).
#include "image/reference.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "image/digest.h"

namespace berth::image {
namespace {

constexpr absl::string_view kDefaultDomain = "docker.io";
constexpr absl::string_view kLegacyDefaultDomain = "index.docker.io";
constexpr absl::string_view kOfficialRepoPrefix = "library/";
constexpr absl::string_view kDefaultTag = "latest";
constexpr size_t kNameTotalLengthMax = 255;
constexpr size_t kTagLengthMax = 128;

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }
bool isWord(char c) { return isAlnum(c) || c == '_'; }
bool isHex(char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); }

bool isHexId(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// path-component := alpha-numeric (separator alpha-numeric)*
// separator       := [_.] | "__" | "-"+
bool validPathComponent(absl::string_view s) {
  size_t i = 0;
  auto alnumRun = [&]() {
    size_t start = i;
    while (i < s.size() && isLowerAlnum(s[i])) ++i;
    return i > start;
  };
  if (!alnumRun()) return false;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnumRun()) return false;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool validDomainComponent(absl::string_view s) {
  if (s.empty() || !isAlnum(s.front()) || !isAlnum(s.back())) return false;
  for (char c : s) {
    if (!isAlnum(c) && c != '-') return false;
  }
  return true;
}

bool validPort(absl::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// domain := (domain-component ('.' domain-component)* | '[' ipv6 ']') (':' port)?
bool validDomain(absl::string_view s) {
  absl::string_view host = s;
  if (absl::StartsWith(s, "[")) {
    size_t close = s.find(']');
    if (close == absl::string_view::npos || close < 2) return false;
    for (char c : s.substr(1, close - 1)) {
      if (!isHex(c) && c != ':') return false;
    }
    absl::string_view rest = s.substr(close + 1);
    if (rest.empty()) return true;
    return absl::ConsumePrefix(&rest, ":") && validPort(rest);
  }
  size_t colon = s.find(':');
  if (colon != absl::string_view::npos) {
    if (!validPort(s.substr(colon + 1))) return false;
    host = s.substr(0, colon);
  }
  for (absl::string_view part : absl::StrSplit(host, '.')) {
    if (!validDomainComponent(part)) return false;
  }
  return true;
}

// tag := [\w][\w.-]{0,127}
bool validTag(absl::string_view s) {
  if (s.empty() || s.size() > kTagLengthMax || !isWord(s.front())) return false;
  for (char c : s) {
    if (!isWord(c) && c != '.' && c != '-') return false;
  }
  return true;
}

absl::Status invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid image reference \"", text, "\": ", why));
}

}  // namespace

std::string Reference::repository() const { return absl::StrCat(domain, "/", path); }

std::string Reference::str() const {
  std::string out = repository();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

std::string Reference::withTag() const {
  return tag.empty() ? std::string() : absl::StrCat(repository(), ":", tag);
}

std::string Reference::withDigest(const std::string& d) const {
  return absl::StrCat(repository(), "@", d);
}

absl::StatusOr<Reference> parseReference(absl::string_view text) {
  if (text.empty()) return invalid(text, "empty reference");
  if (isHexId(text)) {
    return invalid(text, "a 64-hex image id is not a reference");
  }
  if (absl::StartsWith(text, "sha256:") && Digest::parse(text).ok()) {
    return invalid(text, "an image id is not a reference");
  }

  Reference ref;
  absl::string_view name = text;
  if (size_t at = text.find('@'); at != absl::string_view::npos) {
    name = text.substr(0, at);
    absl::string_view digest = text.substr(at + 1);
    auto parsed = Digest::parse(digest);
    if (!parsed.ok()) return invalid(text, parsed.status().message());
    ref.digest = parsed->str();
  }
  // A ':' after the last '/' starts the tag (a ':' before it belongs to the domain's port).
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    absl::string_view tag = name.substr(colon + 1);
    if (!validTag(tag)) return invalid(text, absl::StrCat("invalid tag \"", tag, "\""));
    ref.tag = std::string(tag);
    name = name.substr(0, colon);
  }
  if (name.empty()) return invalid(text, "empty repository name");

  // The first component is a domain only if it looks like a host name.
  absl::string_view remainder = name;
  ref.domain = std::string(kDefaultDomain);
  if (size_t i = name.find('/'); i != absl::string_view::npos) {
    absl::string_view first = name.substr(0, i);
    if (absl::StrContains(first, '.') || absl::StrContains(first, ':') || first == "localhost") {
      ref.domain = std::string(first);
      remainder = name.substr(i + 1);
    }
  }
  if (ref.domain == kLegacyDefaultDomain) ref.domain = std::string(kDefaultDomain);
  if (!validDomain(ref.domain)) {
    return invalid(text, absl::StrCat("invalid domain \"", ref.domain, "\""));
  }
  if (remainder.empty()) return invalid(text, "empty repository path");
  if (absl::AsciiStrToLower(remainder) != remainder) {
    return invalid(text, "repository name must be lowercase");
  }
  for (absl::string_view part : absl::StrSplit(remainder, '/')) {
    if (!validPathComponent(part)) {
      return invalid(text, absl::StrCat("invalid repository path component \"", part, "\""));
    }
  }
  ref.path = std::string(remainder);
  if (ref.domain == kDefaultDomain && !absl::StrContains(ref.path, '/')) {
    ref.path = absl::StrCat(kOfficialRepoPrefix, ref.path);
  }
  if (size_t len = ref.repository().size(); len > kNameTotalLengthMax) {
    return invalid(text, absl::StrCat("repository name is ", len, " characters, more than ",
                                      kNameTotalLengthMax));
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = std::string(kDefaultTag);
  return ref;
}

}  // namespace berth::image
