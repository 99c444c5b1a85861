// Leases and claims on blob and snapshot keys.
#include "image/image_leases.h"

#include <utility>

namespace berth::image {

ImageLeases::Lease::Lease(Lease&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), keys_(std::move(o.keys_)) {}

ImageLeases::Lease& ImageLeases::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::exchange(o.owner_, nullptr);
    keys_ = std::move(o.keys_);
  }
  return *this;
}

void ImageLeases::Lease::add(const std::string& key) {
  ImageLeases& o = *owner_;
  auto free = [&o, &key]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(o.mu_) {
    return !o.claimed_.contains(key);
  };
  absl::MutexLock lock(&o.mu_, absl::Condition(&free));
  ++o.held_[key];
  keys_.push_back(key);
}

void ImageLeases::Lease::release() {
  if (owner_ == nullptr || keys_.empty()) return;
  absl::MutexLock lock(&owner_->mu_);
  for (const std::string& key : keys_) {
    auto it = owner_->held_.find(key);
    if (it != owner_->held_.end() && --it->second == 0) owner_->held_.erase(it);
  }
  keys_.clear();
}

ImageLeases::Claims::~Claims() {
  absl::MutexLock lock(&owner_.mu_);
  for (const std::string& key : keys_) owner_.claimed_.erase(key);
}

bool ImageLeases::Claims::claim(const std::string& key) {
  absl::MutexLock lock(&owner_.mu_);
  if (owner_.held_.contains(key) || owner_.claimed_.contains(key)) return false;
  owner_.claimed_.insert(key);
  keys_.push_back(key);
  return true;
}

int ImageLeases::holders(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

}  // namespace berth::image
