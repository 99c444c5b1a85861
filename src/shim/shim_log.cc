// printf-style logging for berth-shim: one write(2) per line, so lines never interleave.
#include "shim/shim_log.h"

#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace berth::shim {
namespace {

LogLevel g_level = LogLevel::kInfo;
char g_pod[80] = "";

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

}  // namespace

bool setLogLevel(std::string_view name) {
  if (name == "trace") {
    g_level = LogLevel::kTrace;
  } else if (name == "debug") {
    g_level = LogLevel::kDebug;
  } else if (name == "info") {
    g_level = LogLevel::kInfo;
  } else if (name == "warn" || name == "warning") {
    g_level = LogLevel::kWarn;
  } else if (name == "error") {
    g_level = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

void setLogPodId(std::string_view pod_id) {
  size_t n = pod_id.size() < sizeof g_pod - 1 ? pod_id.size() : sizeof g_pod - 1;
  pod_id.copy(g_pod, n);
  g_pod[n] = '\0';
}

void logf(LogLevel level, const char* fmt, ...) {
  if (level < g_level) return;
  char line[2048];
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s [shim %s] ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, ts.tv_nsec / 1000, levelName(level), g_pod);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1;
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + len, sizeof line - len, fmt, ap);
  va_end(ap);
  if (m > 0)
    len +=
        static_cast<size_t>(m) < sizeof line - len ? static_cast<size_t>(m) : sizeof line - len - 1;
  if (len >= sizeof line - 1) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t w = ::write(STDERR_FILENO, line, len);
  (void)w;
}

}  // namespace berth::shim
