// Manifest/index/config JSON handling; every parse error names what was being read.
#include "image/manifest.h"

#include "absl/strings/numbers.h"
#include "common/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_text.h"
#include "image/digest.h"

namespace berth::image {
namespace {

absl::StatusOr<nlohmann::json> parseJson(absl::string_view body, absl::string_view what) {
  BERTH_ASSIGN_OR_RETURN(nlohmann::json j,
                         parseUntrustedJson(body, what, kMaxImageJsonBytes));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
  }
  return j;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

absl::StatusOr<Descriptor> parseDescriptor(const nlohmann::json& j, absl::string_view what) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, " is not an object"));
  Descriptor d;
  d.media_type = str(j, "mediaType");
  d.digest = str(j, "digest");
  auto digest = Digest::parse(d.digest);
  if (!digest.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", digest.status().message()));
  }
  // Downloads stop at the size a descriptor gives, so a descriptor must give one.
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " (", d.digest, ") has no valid size"));
  }
  d.size = size->get<int64_t>();
  if (auto it = j.find("platform"); it != j.end() && it->is_object()) {
    d.os = str(*it, "os");
    d.architecture = str(*it, "architecture");
    d.variant = str(*it, "variant");
  }
  return d;
}

}  // namespace

bool isIndex(absl::string_view media_type, absl::string_view body) {
  if (media_type == kOciIndex || media_type == kDockerManifestList) return true;
  if (media_type == kOciManifest || media_type == kDockerManifest) return false;
  auto j = parseUntrustedJson(body, "manifest", kMaxImageJsonBytes);
  return j.ok() && j->is_object() && j->contains("manifests") && !j->contains("layers");
}

absl::StatusOr<std::vector<Descriptor>> parseIndex(absl::string_view body) {
  auto j = parseJson(body, "image index");
  if (!j.ok()) return j.status();
  auto it = j->find("manifests");
  if (it == j->end() || !it->is_array()) {
    return absl::InvalidArgumentError("image index has no manifests list");
  }
  std::vector<Descriptor> out;
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = parseDescriptor((*it)[i], absl::StrCat("image index entry ", i));
    if (!d.ok()) return d.status();
    out.push_back(std::move(*d));
  }
  return out;
}

absl::StatusOr<Descriptor> choosePlatform(const std::vector<Descriptor>& entries,
                                          absl::string_view os, absl::string_view architecture,
                                          absl::string_view variant) {
  std::vector<std::string> offered;
  for (const auto& e : entries) {
    if (e.os == os && e.architecture == architecture &&
        (variant.empty() || e.variant.empty() || e.variant == variant)) {
      return e;
    }
    offered.push_back(absl::StrCat(e.os, "/", e.architecture,
                                   e.variant.empty() ? "" : "/", e.variant));
  }
  return absl::NotFoundError(absl::StrCat("no image for platform ", os, "/", architecture,
                                          " (the index offers: ", absl::StrJoin(offered, ", "),
                                          ")"));
}

absl::StatusOr<ImageManifest> parseManifest(absl::string_view body) {
  auto j = parseJson(body, "image manifest");
  if (!j.ok()) return j.status();
  if (auto v = j->find("schemaVersion"); v == j->end() || *v != 2) {
    return absl::InvalidArgumentError("image manifest: only schemaVersion 2 is supported");
  }
  ImageManifest m;
  auto cfg = j->find("config");
  if (cfg == j->end()) return absl::InvalidArgumentError("image manifest has no config");
  auto config = parseDescriptor(*cfg, "image manifest config");
  if (!config.ok()) return config.status();
  m.config = std::move(*config);
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array()) {
    return absl::InvalidArgumentError("image manifest has no layers list");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    auto d = parseDescriptor((*layers)[i], absl::StrCat("image manifest layer ", i));
    if (!d.ok()) return d.status();
    m.layers.push_back(std::move(*d));
  }
  return m;
}

absl::StatusOr<ImageConfig> parseImageConfig(absl::string_view body) {
  auto j = parseJson(body, "image config");
  if (!j.ok()) return j.status();
  ImageConfig c;
  c.json = std::move(*j);
  auto rootfs = c.json.find("rootfs");
  if (rootfs == c.json.end() || !rootfs->is_object() || !rootfs->contains("diff_ids") ||
      !(*rootfs)["diff_ids"].is_array()) {
    return absl::InvalidArgumentError("image config has no rootfs.diff_ids");
  }
  for (const auto& d : (*rootfs)["diff_ids"]) {
    if (!d.is_string() || !Digest::parse(d.get<std::string>()).ok()) {
      return absl::InvalidArgumentError("image config has an invalid diff id");
    }
    c.diff_ids.push_back(d.get<std::string>());
  }
  if (auto cfg = c.json.find("config"); cfg != c.json.end() && cfg->is_object()) {
    c.user = str(*cfg, "User");
  }
  return c;
}

std::vector<std::string> chainIds(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  for (const auto& diff : diff_ids) {
    out.push_back(out.empty() ? diff : sha256Of(absl::StrCat(out.back(), " ", diff)).str());
  }
  return out;
}

ImageUser parseImageUser(absl::string_view user) {
  ImageUser u;
  absl::string_view name = user.substr(0, user.find(':'));
  if (name.empty()) return u;
  int64_t uid = 0;
  if (absl::SimpleAtoi(name, &uid)) {
    u.has_uid = true;
    u.uid = uid;
  } else {
    u.username = std::string(name);
  }
  return u;
}

}  // namespace berth::image
