// Applies an OCI/Docker image layer (a tar, gzip- or zstd-compressed or plain) onto a
// directory, in overlayfs format: whiteouts become overlay whiteouts, never deletions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace berth::image {

struct UnpackStats {
  uint64_t entries = 0;  // tar entries applied (whiteouts included)
  uint64_t bytes = 0;    // regular-file data written
  uint64_t tar_bytes = 0;  // length of the uncompressed tar stream
  std::string diff_id;     // "sha256:…" of the uncompressed tar stream (the layer's diff id)
  // Directories the layer needed but does not list (relative to the root, sorted), created
  // root-owned 0755: adoptLowerAttributes() gives them their lower layers' owner and mode.
  std::vector<std::string> implicit_dirs;
};

// Where a layer's bytes (compressed or not) come from: a stored blob, or a download in flight.
class LayerSource {
 public:
  virtual ~LayerSource() = default;
  // The next chunk, valid until the next call; empty at the end. An error ends the unpack with
  // that error as it is.
  [[nodiscard]] virtual absl::StatusOr<absl::string_view> read() = 0;
  // Told by a reader that will not read (further), e.g. because another call makes the layer:
  // a source fed by someone else must not keep them waiting.
  virtual void unused() {}
};

// A layer stored in a file, opened at the first read.
class FileLayerSource : public LayerSource {
 public:
  explicit FileLayerSource(std::string path);
  [[nodiscard]] absl::StatusOr<absl::string_view> read() override;

 private:
  std::string path_;
  UniqueFd fd_;
  std::vector<char> buf_;
};

struct UnpackOptions {
  // When set, the uncompressed stream must hash to it: DataLoss otherwise. Checked before the
  // unpack counts as done, so a caller that keeps `root` only on success never keeps content
  // that is not what the image config says.
  std::string expected_diff_id;
  uint64_t max_tar_bytes = 0;  // bound on the uncompressed stream; 0: none
  uint64_t max_entries = 0;    // bound on tar entries; 0: none
};

// Unpacks the layer that `source` yields into `root`, an existing directory: in overlay mode,
// the empty directory that becomes the layer's own snapshot. The compression is detected from
// the content. `name` names the layer in errors and logs.
//
// Overlay format: `dir/.wh.name` becomes a whiteout (a 0:0 character device named `name`) and
// `dir/.wh..wh..opq` sets trusted.overlay.opaque=y on `dir`, so `root` can serve directly as an
// overlay lowerdir. Files, directories, symlinks, hard links, devices and fifos keep their
// numeric owner, mode (setuid/setgid/sticky included), xattrs and times. A later entry for an
// existing path replaces it, except that a directory over a directory merges. Nothing of the
// lower layers is needed: a layer can be unpacked while they are (see implicit_dirs).
//
// Nothing is written outside `root`: an entry that climbs out with "..", passes through a
// symlink or a non-directory, or hard-links to something that is not in the layer is refused
// with InvalidArgument naming the entry and the layer. A malformed archive is InvalidArgument
// too. On any error `root` is left partly written; the caller removes it.
//
// The uncompressed stream is hashed while it is read (its end past the tar's end-of-archive
// blocks included), and `options` bound its length and entry count: ResourceExhausted names
// the bound. The source is read to its end before the result is known.
[[nodiscard]] absl::StatusOr<UnpackStats> unpackLayer(LayerSource& source, const std::string& name,
                                                      const std::string& root,
                                                      const UnpackOptions& options = {});
// The same for a layer stored at `layer_path`.
[[nodiscard]] absl::StatusOr<UnpackStats> unpackLayer(const std::string& layer_path,
                                                      const std::string& root,
                                                      const UnpackOptions& options = {});

// Gives each of `implicit_dirs` (UnpackStats::implicit_dirs of the layer unpacked into `root`)
// the owner and mode the same path has in the topmost of `lower_dirs` (the parent layers'
// directories, top first) that has it as a directory; as containerd does, so that e.g. /tmp
// keeps its sticky bit. One that is no longer a directory in `root` is left alone.
[[nodiscard]] absl::Status adoptLowerAttributes(const std::string& root,
                                                const std::vector<std::string>& implicit_dirs,
                                                const std::vector<std::string>& lower_dirs);

}  // namespace berth::image
