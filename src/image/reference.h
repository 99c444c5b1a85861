// Image references ("busybox", "registry.k8s.io/pause:3.9", "repo@sha256:…"): parsing,
// validation and normalisation to the fully qualified form Docker and containerd use.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::image {

// A parsed, normalised reference. At least one of `tag` and `digest` is set.
struct Reference {
  std::string domain;  // "docker.io", "registry.k8s.io", "127.0.0.1:5000", "[::1]:5000"
  std::string path;    // "library/busybox"; never empty
  std::string tag;     // "latest", "1.29"; empty when only a digest was given
  std::string digest;  // "sha256:<64 hex>" or empty

  // domain + "/" + path, e.g. "docker.io/library/busybox".
  std::string repository() const;
  // The normalised full form: repository[:tag][@digest].
  std::string str() const;
  // repository:tag, or "" when there is no tag.
  std::string withTag() const;
  // repository@digest.
  std::string withDigest(const std::string& digest) const;

  bool operator==(const Reference&) const = default;
};

// Parses and normalises `text` like Docker and containerd do:
//   busybox                 → docker.io/library/busybox:latest
//   user/img                → docker.io/user/img:latest
//   index.docker.io/x/y     → docker.io/x/y:latest
//   host:5000/ns/name:tag   → host:5000/ns/name:tag
//   name@sha256:…           → docker.io/library/name@sha256:… (no tag)
// The first path component is a domain only if it contains '.' or ':' or is "localhost".
// InvalidArgument names the text when it does not follow the distribution reference grammar.
// An image id ("sha256:<64 hex>" or 64 bare hex digits) is not a reference: callers look for
// ids first.
[[nodiscard]] absl::StatusOr<Reference> parseReference(absl::string_view text);

}  // namespace berth::image
