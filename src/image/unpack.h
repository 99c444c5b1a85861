// Applies an OCI/Docker image layer (a tar, gzip- or zstd-compressed or plain) onto a
// directory, in overlayfs format: whiteouts become overlay whiteouts, never deletions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::image {

struct UnpackStats {
  uint64_t entries = 0;  // tar entries applied (whiteouts included)
  uint64_t bytes = 0;    // regular-file data written
};

// Unpacks the layer at `layer_path` into `root`, an existing directory: in overlay mode, the
// empty directory that becomes the layer's own snapshot. The compression is detected from the
// content.
//
// Overlay format: `dir/.wh.name` becomes a whiteout (a 0:0 character device named `name`) and
// `dir/.wh..wh..opq` sets trusted.overlay.opaque=y on `dir`, so `root` can serve directly as an
// overlay lowerdir. Files, directories, symlinks, hard links, devices and fifos keep their
// numeric owner, mode (setuid/setgid/sticky included), xattrs and times. A later entry for an
// existing path replaces it, except that a directory over a directory merges.
//
// `lower_dirs` (optional) are the parent layers' directories, top first: a directory the layer
// does not list but needs is created with the owner and mode it has there.
//
// Nothing is written outside `root`: an entry that climbs out with "..", passes through a
// symlink or a non-directory, or hard-links to something that is not in the layer is refused
// with InvalidArgument naming the entry and the layer. A malformed archive is InvalidArgument
// too. On any error `root` is left partly written; the caller removes it.
[[nodiscard]] absl::StatusOr<UnpackStats> unpackLayer(
    const std::string& layer_path, const std::string& root,
    const std::vector<std::string>& lower_dirs = {});

}  // namespace berth::image
