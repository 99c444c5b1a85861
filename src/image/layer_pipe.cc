// LayerPipe: the bounded hand-over from a layer's download to its unpack.
#include "image/layer_pipe.h"

#include <utility>

namespace berth::image {

absl::Status LayerPipe::write(const char* data, size_t len) {
  absl::MutexLock lock(&mu_);
  auto room = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || buffered_ < capacity_; };
  mu_.Await(absl::Condition(&room));
  if (closed_) return absl::OkStatus();
  if (finished_) return absl::FailedPreconditionError("write to a finished layer pipe");
  if (len == 0) return absl::OkStatus();
  chunks_.emplace_back(data, len);
  buffered_ += len;
  wrote_ = true;
  return absl::OkStatus();
}

void LayerPipe::finish(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  end_ = std::move(status);
}

void LayerPipe::finishFromFile(std::string path) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  if (wrote_) {
    end_ = absl::InternalError("layer pipe: the blob was both streamed and read from its file");
    return;
  }
  file_ = std::move(path);
}

absl::StatusOr<absl::string_view> LayerPipe::read() {
  if (from_file_ == nullptr) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !chunks_.empty() || finished_; };
    mu_.Await(absl::Condition(&ready));
    if (!chunks_.empty()) {
      current_ = std::move(chunks_.front());
      chunks_.pop_front();
      buffered_ -= current_.size();
      return absl::string_view(current_);
    }
    if (!end_.ok()) return end_;
    if (file_.empty()) return absl::string_view();
    from_file_ = std::make_unique<FileLayerSource>(file_);
  }
  return from_file_->read();
}

void LayerPipe::close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  chunks_.clear();
  buffered_ = 0;
}

bool LayerPipe::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

}  // namespace berth::image
