// Image volumes (KEP-4639): a CRI Mount whose `image` names a pulled image mounts that image's
// root filesystem read-only in the container. Each lives at <container dir>/image-volumes/<n>:
// an overlay of the writable-but-empty snapshot "<container id>-iv<n>" on the image's layers,
// mounted read-only. The snapshot keeps the layers from garbage collection while the container
// exists. The folder is made before the snapshot, so a crash at any point leaves everything
// findable from the container's folder (removeImageVolumes undoes it).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/undo.h"
#include "image/image_manager.h"
#include "image/snapshot.h"

namespace berth::container {

struct ImageVolumeRequest {
  std::string container_path;  // for messages
  std::string image;           // a reference or an image id (kubelet sends the id)
  std::string sub_path;        // relative, within the image; "" = its root
};

// Mounts volume `n` of container `id` (folder `dir`) and returns the host path to bind: the
// mount, or the file or directory `sub_path` names in it, resolved inside the image (its
// symlinks cannot lead out of it). Steps taken are armed on `undo`. Errors start with
// "ImageVolumeMountFailed: " (kubelet counts such failures by that prefix): NotFound for an
// image that is not pulled or a sub path that is not in it, InvalidArgument for a bad one.
// In a pod with a user namespace of its own, `idmap` (else null) maps the image's files.
[[nodiscard]] absl::StatusOr<std::string> mountImageVolume(
    image::ImageManager& images, image::OverlaySnapshotter& snapshots, const std::string& id,
    const std::string& dir, size_t n, const ImageVolumeRequest& req, Undo& undo,
    const image::Idmap* idmap = nullptr);

// Volume `n` of a container in a pod with a user namespace of its own, for a mount with id
// mappings: an idmapped copy of `host_path` (with what is mounted below it) attached at
// <dir>/idmapped/<n>, returned for the container to bind like any volume. `slave` keeps mounts
// made later below host_path coming (HostToContainer). A host_path that does not exist is
// returned as it is (the spec refuses it). Steps are armed on `undo`; a crash leaves the mount
// under the container's folder, where unmountImageVolumes finds it.
[[nodiscard]] absl::StatusOr<std::string> mountIdmappedVolume(const std::string& dir, size_t n,
                                                              const std::string& host_path,
                                                              const image::Idmap& idmap, bool slave,
                                                              Undo& undo);

// Detaches every image volume mount and idmapped volume of the container in `dir` (those not
// mounted are fine).
[[nodiscard]] absl::Status unmountImageVolumes(const std::string& dir);

// Unmounts them and removes their snapshots; the folders stay for the caller to remove.
[[nodiscard]] absl::Status removeImageVolumes(image::OverlaySnapshotter& snapshots,
                                              const std::string& id, const std::string& dir);

}  // namespace berth::container
