// RemoveImage and ImageFsInfo.
#include "cri/image_handlers.h"

namespace berth::cri {

absl::Status ImageHandlers::remove(const v1::RemoveImageRequest& req,
                                   v1::RemoveImageResponse* /*resp*/) {
  const std::string& ref = req.image().image();
  if (ref.empty()) return absl::InvalidArgumentError("RemoveImage: image reference is empty");
  return images_.remove(ref);
}

absl::Status ImageHandlers::fsInfo(const v1::ImageFsInfoRequest& /*req*/,
                                   v1::ImageFsInfoResponse* resp) const {
  image::FsUsage u = images_.usage();
  // Images and containers' writable layers share the snapshotter's filesystem, as with
  // containerd's default setup; both lists report it.
  for (auto* fs : {resp->add_image_filesystems(), resp->add_container_filesystems()}) {
    fs->set_timestamp(u.timestamp_ns);
    fs->mutable_fs_id()->set_mountpoint(u.mountpoint);
    fs->mutable_used_bytes()->set_value(u.bytes);
    fs->mutable_inodes_used()->set_value(u.inodes);
  }
  return absl::OkStatus();
}

}  // namespace berth::cri
