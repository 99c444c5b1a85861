// ImageStatus, ListImages, StreamImages: answered from memory.
#include "absl/strings/str_cat.h"
#include "common/json_text.h"
#include "cri/image_handlers.h"
#include "cri/stream_batches.h"
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
    // containerd's shape: {"chainID": …, "imageSpec": <OCI image config>}. The config came
    // from a registry: it is spliced in as stored (checked when it was pulled), never parsed
    // and re-serialised here, which would recurse as deep as its nesting.
    const std::string& config = (*image)->config_json;
    bool usable = !config.empty() && jsonNestingDepth(config) <= kMaxJsonDepth;
    (*resp->mutable_info())["info"] =
        absl::StrCat(R"({"chainID":)", nlohmann::json((*image)->chain_id).dump(),
                     R"(,"imageSpec":)", usable ? config : "null", "}");
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
  return writeInBatches("StreamImages", *selected, writer,
                        [this](const store::ImagePtr& image, v1::StreamImagesResponse& batch) {
                          toCri(*image, batch.add_images());
                        });
}

}  // namespace berth::cri
