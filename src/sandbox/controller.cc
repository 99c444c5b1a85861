// Controller registry.
#include "sandbox/controller.h"

#include "absl/strings/str_cat.h"

namespace berth::sandbox {

void ControllerRegistry::add(const std::string& name, std::unique_ptr<Controller> controller) {
  absl::MutexLock lock(&mu_);
  controllers_[name] = std::move(controller);
}

absl::StatusOr<Controller*> ControllerRegistry::get(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = controllers_.find(name);
  if (it == controllers_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("sandbox controller \"", name, "\" is not registered"));
  }
  return it->second.get();
}

}  // namespace berth::sandbox
