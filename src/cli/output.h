// berthctl output: protobuf messages and JSON values as JSON, YAML or aligned tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/map.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace berth::cli {

enum class OutputFormat { kTable, kJson, kYaml };

[[nodiscard]] absl::StatusOr<OutputFormat> parseOutputFormat(const std::string& name);

// parseOutputFormat for a command: prints the error to stderr and returns nullopt when the
// name is bad. `table_as` replaces "table" for commands that have no table form.
std::optional<OutputFormat> commandOutputFormat(const std::string& name,
                                                std::optional<OutputFormat> table_as = {});

// A message in protobuf's JSON form (camelCase keys, as crictl prints), as a JSON value.
nlohmann::json messageToJson(const google::protobuf::Message& message);

// Adds each verbose-info entry to `out` under its key, parsed as JSON when it is JSON (the
// shape `crictl inspect*` and `crictl info` print).
void mergeInfo(const google::protobuf::Map<std::string, std::string>& info, nlohmann::json& out);

// Block-style YAML for a JSON value (keys in the value's order; strings quoted when needed).
std::string toYaml(const nlohmann::json& value);

// Renders `value` as pretty JSON or YAML; kTable is the caller's job.
std::string render(const nlohmann::json& value, OutputFormat format);

// "Key:  value" lines, keys padded to one column.
std::string keyValueTable(const std::vector<std::pair<std::string, std::string>>& rows);

// "5 minutes ago" for a time in nanoseconds since the epoch (the CREATED columns).
std::string timeAgo(int64_t ns);

// Reads a file holding `message` in protobuf's JSON form (a CRI config); unknown fields are
// errors. On failure prints what went wrong, naming the file as `what`, and returns false.
bool readJsonMessage(const std::string& path, const std::string& what,
                     google::protobuf::Message& message);

}  // namespace berth::cli
