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
  uint64_t tar_bytes = 0;  // length of the uncompressed tar stream
  std::string diff_id;     // "sha256:…" of the uncompressed tar stream (the layer's diff id)
};

struct UnpackOptions {
  // When set, the uncompressed stream must hash to it: DataLoss otherwise. Checked before the
  // unpack counts as done, so a caller that keeps `root` only on success never keeps content
  // that is not what the image config says.
  std::string expected_diff_id;
  uint64_t max_tar_bytes = 0;  // bound on the uncompressed stream; 0: none
  uint64_t max_entries = 0;    // bound on tar entries; 0: none
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
//
// The uncompressed stream is hashed while it is read (its end past the tar's end-of-archive
// blocks included), and `options` bound its length and entry count: ResourceExhausted names
// the bound.
[[nodiscard]] absl::StatusOr<UnpackStats> unpackLayer(
    const std::string& layer_path, const std::string& root,
    const std::vector<std::string>& lower_dirs = {}, const UnpackOptions& options = {});

}  // namespace berth::image
