// berth-shim's own tiny logger: printf-style lines on stderr (the shim's log file), filtered by
// level. The shim does not use spdlog, to stay small.
#pragma once

#include <string_view>

namespace berth::shim {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// Sets the level from its name (trace, debug, info, warn, error); false for other names.
bool setLogLevel(std::string_view name);

// Writes one line `<UTC time> <level> [shim <pod>] <message>` to stderr if `level` is enabled.
void logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// The pod id printed on every line.
void setLogPodId(std::string_view pod_id);

}  // namespace berth::shim

#define SHIM_LOG_DEBUG(...) ::berth::shim::logf(::berth::shim::LogLevel::kDebug, __VA_ARGS__)
#define SHIM_LOG_INFO(...) ::berth::shim::logf(::berth::shim::LogLevel::kInfo, __VA_ARGS__)
#define SHIM_LOG_WARN(...) ::berth::shim::logf(::berth::shim::LogLevel::kWarn, __VA_ARGS__)
#define SHIM_LOG_ERROR(...) ::berth::shim::logf(::berth::shim::LogLevel::kError, __VA_ARGS__)
