// The calls of shim::TaskApi that fakes of failure paths have no use for (exec, attach, the
// container's stdio and log): exec and attach answer Unimplemented, the others OK.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shim/shim_client.h"

namespace berth::shim::testing {

template <typename Base>
class TaskStubs : public Base {
 public:
  absl::StatusOr<ExecResult> exec(const ExecOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::unique_ptr<StreamedProcess>> execStreamed(const ExecOptions&,
                                                                bool) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::unique_ptr<Attachment>> attach(const std::string&, bool, bool,
                                                     bool) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status closeStdinOnce(const std::string&) override { return absl::OkStatus(); }
  absl::Status reopenLog(const std::string&) override { return absl::OkStatus(); }
};

}  // namespace berth::shim::testing
