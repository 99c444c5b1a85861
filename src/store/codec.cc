// JSON `data` column codec. Each record lists its data fields once (a *Fields function) and
// the same list drives both encoding and decoding.
#include "store/codec.h"

#include "absl/strings/str_cat.h"
#include "common/json_text.h"
#include "nlohmann/json.hpp"

namespace berth::store {

using nlohmann::json;

// nlohmann-json finds these by argument-dependent lookup for the nested metadata objects.
// NOLINTBEGIN(readability-identifier-naming): the names nlohmann-json looks up.
void to_json(json& out, const SandboxMetadata& m);
void from_json(const json& in, SandboxMetadata& m);
void to_json(json& out, const ContainerMetadata& m);
void from_json(const json& in, ContainerMetadata& m);
void to_json(json& out, Pending p);
void from_json(const json& in, Pending& p);
// NOLINTEND(readability-identifier-naming)

namespace {

// Field visitors: Writer puts a field into an object, Reader takes it out if present.
struct Writer {
  json& out;
  template <typename T>
  void operator()(const char* key, const T& value) {
    out[key] = value;
  }
};

struct Reader {
  const json& in;
  template <typename T>
  void operator()(const char* key, T& value) {
    auto it = in.find(key);
    if (it != in.end() && !it->is_null()) it->get_to(value);  // throws on a type mismatch
  }
};

// Field lists. Keys are on-disk names: never rename one, add a new key instead.
template <typename M, typename F>
void sandboxMetadataFields(M& m, F&& f) {
  f("name", m.name);
  f("uid", m.uid);
  f("namespace", m.ns);
  f("attempt", m.attempt);
}

template <typename M, typename F>
void containerMetadataFields(M& m, F&& f) {
  f("name", m.name);
  f("attempt", m.attempt);
}

// id, name, state and config_bytes are columns.
template <typename R, typename F>
void sandboxFields(R& r, F&& f) {
  f("metadata", r.metadata);
  f("runtime_handler", r.runtime_handler);
  f("sandboxer", r.sandboxer);
  f("created_at_ns", r.created_at_ns);
  f("exited_at_ns", r.exited_at_ns);
  f("exit_code", r.exit_code);
  f("pid", r.pid);
  f("netns_path", r.netns_path);
  f("userns_path", r.userns_path);
  f("ips", r.ips);
  f("labels", r.labels);
  f("annotations", r.annotations);
  f("spec_json", r.spec_json);
  f("cni_result_json", r.cni_result_json);
  f("shim_dir", r.shim_dir);
  f("bundle_dir", r.bundle_dir);
  f("image", r.image);
  f("snapshot_key", r.snapshot_key);
  f("snapshotter", r.snapshotter);
  f("runtime_type", r.runtime_type);
  f("pause_args", r.pause_args);
  f("config_json", r.config_json);
  f("pending", r.pending);
  f("network_torn_down", r.network_torn_down);
  f("netns_closed", r.netns_closed);
}

// id, sandbox_id, name, state and config_bytes are columns.
template <typename R, typename F>
void containerFields(R& r, F&& f) {
  f("metadata", r.metadata);
  f("image_ref", r.image_ref);
  f("image_id", r.image_id);
  f("created_at_ns", r.created_at_ns);
  f("started_at_ns", r.started_at_ns);
  f("finished_at_ns", r.finished_at_ns);
  f("exit_code", r.exit_code);
  f("reason", r.reason);
  f("message", r.message);
  f("pid", r.pid);
  f("log_path", r.log_path);
  f("snapshot_key", r.snapshot_key);
  f("labels", r.labels);
  f("annotations", r.annotations);
  f("spec_json", r.spec_json);
  f("pending", r.pending);
  f("rootfs", r.rootfs);
  f("rootfs_mounts", r.rootfs_mounts);
  f("bundle_dir", r.bundle_dir);
  f("stop_signal", r.stop_signal);
  f("runtime_type", r.runtime_type);
  f("snapshotter", r.snapshotter);
  f("task_deleted", r.task_deleted);
}

// id is a column; references live in the image_refs table.
template <typename R, typename F>
void imageFields(R& r, F&& f) {
  f("manifest_digest", r.manifest_digest);
  f("media_type", r.media_type);
  f("size", r.size);
  f("config_json", r.config_json);
  f("layers", r.layers);
  f("chain_id", r.chain_id);
  f("created_at_ns", r.created_at_ns);
  f("pinned", r.pinned);
}

// key, parent and kind are columns.
template <typename R, typename F>
void snapshotFields(R& r, F&& f) {
  f("created_at_ns", r.created_at_ns);
  f("size", r.size);
  f("labels", r.labels);
  f("diff_id", r.diff_id);
}

template <typename R, typename FieldsFn>
absl::StatusOr<std::string> encodeWith(const R& record, FieldsFn fields) {
  try {
    json out = json::object();
    fields(record, Writer{out});
    return out.dump();  // strict: throws on invalid UTF-8
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot encode record: ", e.what()));
  }
}

template <typename R, typename FieldsFn>
absl::Status decodeWith(absl::string_view data, R& record, FieldsFn fields) {
  // Records nest a few levels (JSON documents they carry are strings); anything deeper is
  // damage, and must not reach the recursive copies and dumps of nlohmann::json.
  if (jsonNestingDepth(data) > kMaxJsonDepth) {
    return absl::DataLossError("data column nests deeper than any record");
  }
  json in = json::parse(data.data(), data.data() + data.size(), nullptr,
                        /*allow_exceptions=*/false);
  if (!in.is_object()) return absl::DataLossError("data column is not a JSON object");
  try {
    fields(record, Reader{in});
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("bad data column: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

void to_json(json& out, const SandboxMetadata& m) {
  out = json::object();
  sandboxMetadataFields(m, Writer{out});
}
void from_json(const json& in, SandboxMetadata& m) { sandboxMetadataFields(m, Reader{in}); }
void to_json(json& out, const ContainerMetadata& m) {
  out = json::object();
  containerMetadataFields(m, Writer{out});
}
void from_json(const json& in, ContainerMetadata& m) { containerMetadataFields(m, Reader{in}); }
void to_json(json& out, Pending p) { out = std::string(toString(p)); }
void from_json(const json& in, Pending& p) {
  auto parsed = parsePending(in.get<std::string>());
  if (!parsed.ok()) {
    throw json::other_error::create(501, std::string(parsed.status().message()), &in);
  }
  p = *parsed;
}

absl::StatusOr<std::string> encodeData(const SandboxRecord& record) {
  return encodeWith(record, [](const auto& r, auto&& f) { sandboxFields(r, f); });
}
absl::StatusOr<std::string> encodeData(const ContainerRecord& record) {
  return encodeWith(record, [](const auto& r, auto&& f) { containerFields(r, f); });
}
absl::StatusOr<std::string> encodeData(const ImageRecord& record) {
  return encodeWith(record, [](const auto& r, auto&& f) { imageFields(r, f); });
}
absl::StatusOr<std::string> encodeData(const SnapshotRecord& record) {
  return encodeWith(record, [](const auto& r, auto&& f) { snapshotFields(r, f); });
}

absl::Status decodeData(absl::string_view data, SandboxRecord& record) {
  return decodeWith(data, record, [](auto& r, auto&& f) { sandboxFields(r, f); });
}
absl::Status decodeData(absl::string_view data, ContainerRecord& record) {
  return decodeWith(data, record, [](auto& r, auto&& f) { containerFields(r, f); });
}
absl::Status decodeData(absl::string_view data, ImageRecord& record) {
  return decodeWith(data, record, [](auto& r, auto&& f) { imageFields(r, f); });
}
absl::Status decodeData(absl::string_view data, SnapshotRecord& record) {
  return decodeWith(data, record, [](auto& r, auto&& f) { snapshotFields(r, f); });
}

}  // namespace berth::store
