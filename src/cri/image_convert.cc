// Stored image → CRI Image, and the filter shared by ListImages and StreamImages.
#include "absl/strings/str_cat.h"
#include "cri/image_handlers.h"
#include "image/manifest.h"

namespace berth::cri {

void ImageHandlers::toCri(const store::ImageRecord& image, v1::Image* out) const {
  out->set_id(image.id);
  for (const auto& r : images_.references(image.id)) {
    if (r.find('@') != std::string::npos) {
      out->add_repo_digests(r);
    } else {
      out->add_repo_tags(r);
    }
  }
  out->set_size(image.size);
  if (auto config = image::parseImageConfig(image.config_json); config.ok()) {
    image::ImageUser user = image::parseImageUser(config->user);
    if (user.has_uid) {
      out->mutable_uid()->set_value(user.uid);
    } else if (!user.username.empty()) {
      out->set_username(user.username);
    }
  }
  out->mutable_spec()->set_image(image.id);
  out->set_pinned(images_.pinned(image));
}

absl::StatusOr<std::vector<store::ImagePtr>> ImageHandlers::select(
    const v1::ImageFilter& filter) const {
  if (!filter.has_image() || filter.image().image().empty()) return images_.list();
  auto image = images_.resolve(filter.image().image());
  if (absl::IsNotFound(image.status())) return std::vector<store::ImagePtr>{};
  if (!image.ok()) return image.status();
  return std::vector<store::ImagePtr>{*image};
}

}  // namespace berth::cri
