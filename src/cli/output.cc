// JSON/YAML/table rendering for berthctl.
#include "cli/output.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace berth::cli {
namespace {

bool needsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static constexpr std::string_view kSpecial = ":#{}[],&*!|>'\"%@`\n\t\\";
  if (s.find_first_of(kSpecial) != std::string::npos) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.front() == '-' || s.front() == '?') return true;
  static constexpr std::string_view kWords[] = {"true", "false", "null", "yes", "no", "on",
                                                "off", "~",    "True", "False", "Null"};
  if (std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords)) return true;
  // Something that would read back as a number.
  return s.find_first_not_of("0123456789.+-eE") == std::string::npos;
}

std::string scalar(const nlohmann::json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return needsQuotes(s) ? nlohmann::json(s).dump() : s;
  }
  if (v.is_null()) return "null";
  return v.dump();
}

bool isEmptyContainer(const nlohmann::json& v) {
  return (v.is_object() || v.is_array()) && v.empty();
}

void emit(std::ostringstream& out, const nlohmann::json& v, int indent) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (const auto& [k, child] : v.items()) {
      out << pad << scalar(nlohmann::json(k)) << ":";
      if (isEmptyContainer(child)) {
        out << (child.is_object() ? " {}\n" : " []\n");
      } else if (child.is_object() || child.is_array()) {
        out << "\n";
        emit(out, child, indent + 2);
      } else {
        out << " " << scalar(child) << "\n";
      }
    }
  } else if (v.is_array()) {
    for (const auto& child : v) {
      if (isEmptyContainer(child)) {
        out << pad << "- " << (child.is_object() ? "{}" : "[]") << "\n";
      } else if (child.is_object() || child.is_array()) {
        // The first key goes on the dash line; the rest align under it.
        std::ostringstream inner;
        emit(inner, child, indent + 2);
        std::string text = inner.str();
        out << pad << "- " << text.substr(static_cast<size_t>(indent + 2));
      } else {
        out << pad << "- " << scalar(child) << "\n";
      }
    }
  } else {
    out << pad << scalar(v) << "\n";
  }
}

}  // namespace

absl::StatusOr<OutputFormat> parseOutputFormat(const std::string& name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "json") return OutputFormat::kJson;
  if (name == "yaml") return OutputFormat::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("output format \"", name, "\" is not one of table, json, yaml"));
}

std::optional<OutputFormat> commandOutputFormat(const std::string& name,
                                                std::optional<OutputFormat> table_as) {
  auto format = parseOutputFormat(name);
  if (!format.ok()) {
    std::cerr << format.status().message() << "\n";
    return std::nullopt;
  }
  if (*format == OutputFormat::kTable && table_as.has_value()) return table_as;
  return *format;
}

nlohmann::json messageToJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &text, opts);
  return nlohmann::json::parse(text, nullptr, false);
}

void mergeInfo(const google::protobuf::Map<std::string, std::string>& info, nlohmann::json& out) {
  for (const auto& [k, v] : info) {
    nlohmann::json parsed = nlohmann::json::parse(v, nullptr, false);
    out[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
  }
}

std::string toYaml(const nlohmann::json& value) {
  std::ostringstream out;
  if (isEmptyContainer(value)) return value.is_object() ? "{}\n" : "[]\n";
  emit(out, value, 0);
  return out.str();
}

std::string render(const nlohmann::json& value, OutputFormat format) {
  if (format == OutputFormat::kYaml) return toYaml(value);
  return value.dump(2) + "\n";
}

std::string keyValueTable(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : rows) {
    absl::StrAppend(&out, k, ":", std::string(width - k.size() + 2, ' '), v, "\n");
  }
  return out;
}

std::string timeAgo(int64_t ns) {
  int64_t secs = static_cast<int64_t>(std::time(nullptr)) - ns / 1000000000;
  if (secs < 60) return absl::StrCat(secs, " seconds ago");
  if (secs < 3600) return absl::StrCat(secs / 60, " minutes ago");
  if (secs < 86400) return absl::StrCat(secs / 3600, " hours ago");
  return absl::StrCat(secs / 86400, " days ago");
}

bool readJsonMessage(const std::string& path, const std::string& what,
                     google::protobuf::Message& message) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "cannot read " << what << " " << path << "\n";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &message, opts);
  if (!parsed.ok()) {
    std::cerr << what << " " << path << ": " << parsed.ToString() << "\n";
    return false;
  }
  return true;
}

}  // namespace berth::cli
