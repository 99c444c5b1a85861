// OCI / Docker image manifests, indexes and configs: parsing, platform choice, chain ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::image {

inline constexpr absl::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr absl::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr absl::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr absl::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

// Manifests, indexes and configs larger than this are refused (real ones are kilobytes).
inline constexpr size_t kMaxImageJsonBytes = 16 << 20;

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = -1;  // required: parsing refuses a descriptor without a size
  std::string os, architecture, variant;  // index entries only
};

struct ImageManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

// True for an OCI index or a Docker manifest list (by media type, or by content when the
// registry sent no useful type).
bool isIndex(absl::string_view media_type, absl::string_view body);

// The manifests an index lists.
[[nodiscard]] absl::StatusOr<std::vector<Descriptor>> parseIndex(absl::string_view body);

// Picks the entry for os/architecture (variant ignored unless `variant` is set); NotFound
// lists what the index offers.
[[nodiscard]] absl::StatusOr<Descriptor> choosePlatform(const std::vector<Descriptor>& entries,
                                                        absl::string_view os,
                                                        absl::string_view architecture,
                                                        absl::string_view variant = "");

[[nodiscard]] absl::StatusOr<ImageManifest> parseManifest(absl::string_view body);

// What berth needs from an image config.
struct ImageConfig {
  nlohmann::json json;                // the whole config
  std::vector<std::string> diff_ids;  // rootfs.diff_ids
  std::string user;                   // config.User
};

[[nodiscard]] absl::StatusOr<ImageConfig> parseImageConfig(absl::string_view body);

// Chain ids per the OCI image spec: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " +
// diff[i]).
std::vector<std::string> chainIds(const std::vector<std::string>& diff_ids);

// The CRI view of a config's User: a numeric uid (`1002`, `1003:users`) or a name
// (`www-data`, `www-data:www-data`); the group part is not reported.
struct ImageUser {
  bool has_uid = false;
  int64_t uid = 0;
  std::string username;
};
ImageUser parseImageUser(absl::string_view user);

}  // namespace berth::image
