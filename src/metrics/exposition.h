// Building blocks of the Prometheus text exposition format, version 0.0.4: escaping, number
// formatting, and the `# HELP` / `# TYPE` / sample lines.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace berth::metrics {

inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge, kHistogram };

std::string_view typeName(Type type);

// Label values escape backslash, double quote and line feed; HELP text escapes backslash and
// line feed only.
void appendEscapedLabelValue(std::string& out, std::string_view value);
void appendEscapedHelp(std::string& out, std::string_view help);

// Shortest text that reads back as `v`, as Prometheus's Go client writes it for bucket
// bounds: "3", "0.25", "0.0005", "1e-05", "1e+21", "+Inf", "-Inf", "NaN".
std::string formatValue(double v);

// "# HELP <name> <help>\n# TYPE <name> <type>\n".
void appendHeader(std::string& out, std::string_view name, std::string_view help, Type type);

// One sample line: `<name>{<names[i]>="<values[i]>",...[,le="<le>"]} <value>`. `le` is added
// after the other labels when not empty; no braces when there is no label at all.
void appendSample(std::string& out, std::string_view name, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, double value, std::string_view le = {});

// Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*; label names [a-zA-Z_][a-zA-Z0-9_]* and do not
// start with "__" (reserved by Prometheus).
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);

}  // namespace berth::metrics
