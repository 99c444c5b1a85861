// ImageService RPC handlers: validation and CRI conversion around image::ImageManager.
#pragma once

#include <grpcpp/support/sync_stream.h>

#include "absl/status/status.h"
#include "image/image_manager.h"
#include "runtime/v1/api.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Thread-safe (ImageManager is).
class ImageHandlers {
 public:
  explicit ImageHandlers(image::ImageManager& images) : images_(images) {}

  [[nodiscard]] absl::Status pull(const v1::PullImageRequest& req, v1::PullImageResponse* resp);
  [[nodiscard]] absl::Status status(const v1::ImageStatusRequest& req,
                                    v1::ImageStatusResponse* resp) const;
  [[nodiscard]] absl::Status list(const v1::ListImagesRequest& req,
                                  v1::ListImagesResponse* resp) const;
  [[nodiscard]] absl::Status stream(const v1::StreamImagesRequest& req,
                                    grpc::ServerWriter<v1::StreamImagesResponse>* writer) const;
  [[nodiscard]] absl::Status remove(const v1::RemoveImageRequest& req,
                                    v1::RemoveImageResponse* resp);
  [[nodiscard]] absl::Status fsInfo(const v1::ImageFsInfoRequest& req,
                                    v1::ImageFsInfoResponse* resp) const;

 private:
  // The images a filter selects (all when the filter names no image).
  [[nodiscard]] absl::StatusOr<std::vector<store::ImagePtr>> select(
      const v1::ImageFilter& filter) const;
  void toCri(const store::ImageRecord& image, v1::Image* out) const;

  image::ImageManager& images_;
};

}  // namespace berth::cri
