// Logging side of the RPC wrapper.
#include "cri/instrumented.h"

#include <string>

#include "common/logging.h"
#include "google/protobuf/descriptor.h"

namespace berth::cri {

std::string requestIds(const google::protobuf::Message& req) {
  static constexpr absl::string_view kIdFields[] = {"pod_sandbox_id", "container_id"};
  const auto* desc = req.GetDescriptor();
  const auto* refl = req.GetReflection();
  std::string out;
  for (auto name : kIdFields) {
    const auto* field = desc->FindFieldByName(std::string(name));
    if (field == nullptr || field->is_repeated() ||
        field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
      continue;
    }
    std::string value = refl->GetString(req, field);
    if (!value.empty()) absl::StrAppend(&out, out.empty() ? "" : " ", name, "=", value);
  }
  // Image RPCs carry an ImageSpec in field `image`.
  if (const auto* image = desc->FindFieldByName("image");
      image != nullptr && !image->is_repeated() &&
      image->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE &&
      refl->HasField(req, image)) {
    const auto& spec = refl->GetMessage(req, image);
    if (const auto* ref = spec.GetDescriptor()->FindFieldByName("image");
        ref != nullptr && ref->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING &&
        !ref->is_repeated()) {
      absl::StrAppend(&out, out.empty() ? "" : " ", "image=",
                      spec.GetReflection()->GetString(spec, ref));
    }
  }
  return out;
}

bool Instrumented::enter() const {
  absl::MutexLock lock(&mu_);
  if (draining_) return false;
  ++in_flight_;
  return true;
}

void Instrumented::leave() const {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void Instrumented::beginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool Instrumented::waitIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

grpc::Status Instrumented::finish(absl::string_view method, const google::protobuf::Message& req,
                                  const absl::Status& status, absl::Duration took) const {
  grpc::Status reply = toGrpcStatus(status);
  if (metrics_ != nullptr) metrics_->record(method, reply.error_code(), took);
  if (status.ok()) {
    if (log_->should_log(spdlog::level::debug)) {
      log_->debug("{} ok {} took={}", method, requestIds(req), absl::FormatDuration(took));
    }
    return reply;
  }
  // Not-yet-built RPCs and lookups of missing objects are routine for kubelet: keep them quiet.
  auto level = (status.code() == absl::StatusCode::kUnimplemented ||
                status.code() == absl::StatusCode::kNotFound)
                   ? spdlog::level::debug
                   : spdlog::level::warn;
  log_->log(level, "{} failed {} code={} took={}: {}", method, requestIds(req),
            absl::StatusCodeToString(status.code()), absl::FormatDuration(took),
            status.message());
  return reply;
}

}  // namespace berth::cri
