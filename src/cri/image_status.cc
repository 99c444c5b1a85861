// ImageStatus, ListImages, StreamImages: answered from memory.
#include "cri/image_handlers.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

absl::Status ImageHandlers::status(const v1::ImageStatusRequest& req,
                                   v1::ImageStatusResponse* resp) const {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("ImageStatus: image reference is empty");
  auto image = images_.resolve(ref);
  if (absl::IsNotFound(image.status())) {
    // No image: an empty response. While a pull of it runs, verbose info says how far it is
    // (berthctl pull draws its progress from this).
    if (auto p = images_.progress(ref); p.has_value() && req.verbose()) {
      nlohmann::json blobs = nlohmann::json::array();
      for (const auto& b : p->blobs) {
        blobs.push_back({{"digest", b.digest}, {"total", b.total}, {"done", b.done},
                         {"complete", b.complete}});
      }
      (*resp->mutable_info())["pullProgress"] =
          nlohmann::json{{"reference", p->reference}, {"startedAt", p->started_ns},
                         {"blobs", blobs}}
              .dump();
    }
    return absl::OkStatus();
  }
  if (!image.ok()) return image.status();
  toCri(**image, resp->mutable_image());
  if (req.verbose()) {
    // containerd's shape: {"chainID": …, "imageSpec": <OCI image config>}.
    nlohmann::json info;
    info["chainID"] = (*image)->chain_id;
    info["imageSpec"] = nlohmann::json::parse((*image)->config_json, nullptr, false);
    (*resp->mutable_info())["info"] = info.dump();
  }
  return absl::OkStatus();
}

absl::Status ImageHandlers::list(const v1::ListImagesRequest& req,
                                 v1::ListImagesResponse* resp) const {
  auto selected = select(req.filter());
  if (!selected.ok()) return selected.status();
  for (const auto& image : *selected) toCri(*image, resp->add_images());
  return absl::OkStatus();
}

absl::Status ImageHandlers::stream(const v1::StreamImagesRequest& req,
                                   grpc::ServerWriter<v1::StreamImagesResponse>* writer) const {
  auto selected = select(req.filter());
  if (!selected.ok()) return selected.status();
  // Batches keep each message small however many images there are.
  constexpr size_t kBatch = 100;
  for (size_t i = 0; i < selected->size(); i += kBatch) {
    v1::StreamImagesResponse batch;
    for (size_t j = i; j < std::min(selected->size(), i + kBatch); ++j) {
      toCri(*(*selected)[j], batch.add_images());
    }
    if (!writer->Write(batch)) return absl::CancelledError("StreamImages: client went away");
  }
  return absl::OkStatus();
}

}  // namespace berth::cri
