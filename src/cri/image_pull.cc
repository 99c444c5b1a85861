// PullImage.
#include "absl/strings/str_cat.h"
#include "cri/image_handlers.h"

namespace berth::cri {

absl::Status ImageHandlers::pull(const v1::PullImageRequest& req, v1::PullImageResponse* resp) {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("PullImage: image reference is empty");
  image::Credentials creds;
  if (req.has_auth()) {
    const auto& a = req.auth();
    creds.username = a.username();
    creds.password = a.password();
    creds.auth = a.auth();
    creds.identity_token = a.identity_token();
    creds.registry_token = a.registry_token();
  }
  auto image = images_.pull(ref, creds);
  if (!image.ok()) return image.status();
  resp->set_image_ref((*image)->id);
  return absl::OkStatus();
}

}  // namespace berth::cri
