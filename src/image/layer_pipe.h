// A layer handed from its download to its unpack as the bytes arrive: the download writes
// chunks, the unpack reads them, with a bounded buffer between them.
#pragma once

#include <cstddef>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "image/unpack.h"

namespace berth::image {

// One writer thread (the download) and one reader thread (the unpack). The end of the bytes is
// told only once the download knows they are the blob it asked for (finish(OK) after the
// digest check), so an unpack that reads to the end has read checked bytes only.
//
// Either side may stop early: a writer that fails calls finish() with its error, which the
// reader gets; a reader that stops (its unpack failed, or it found the layer made already)
// calls close(), after which writes are dropped without waiting. The download goes on to its
// end even then: bytes that do not unpack may be bytes that do not match their digest, and
// that is the error to report.
class LayerPipe : public LayerSource {
 public:
  explicit LayerPipe(size_t capacity = size_t{4} << 20) : capacity_(capacity) {}

  // Writer side.
  // Appends a copy of the chunk, waiting while the buffer holds `capacity` bytes or more.
  [[nodiscard]] absl::Status write(const char* data, size_t len);
  // No more bytes: OK when they are the whole, checked blob; the transfer's error otherwise.
  void finish(absl::Status status);
  // No bytes came through (the blob was stored already, or another download stored it): the
  // reader reads the stored blob at `path` instead. Internal if some bytes did come through.
  void finishFromFile(std::string path);

  // Reader side.
  [[nodiscard]] absl::StatusOr<absl::string_view> read() override;
  // The reader is done with the pipe.
  void close();
  void unused() override { close(); }

  // Whether the writer has finished (tests, and pulls that stop early).
  bool finished() const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<std::string> chunks_ ABSL_GUARDED_BY(mu_);
  size_t buffered_ ABSL_GUARDED_BY(mu_) = 0;
  bool wrote_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);  // the writer's finish status
  std::string file_ ABSL_GUARDED_BY(mu_);  // finishFromFile's path
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Reader-only state: the chunk last returned, and the stored blob once switched to it.
  std::string current_;
  std::unique_ptr<FileLayerSource> from_file_;
};

}  // namespace berth::image
