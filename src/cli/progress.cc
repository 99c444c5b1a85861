// Pull progress bars.
#include "cli/progress.h"

#include <algorithm>
#include <cstdio>

namespace berth::cli {

std::string humanBytes(uint64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
  return buf;
}

std::vector<std::string> progressLines(const nlohmann::json& progress, int bar_width) {
  std::vector<std::string> lines;
  if (!progress.is_object() || !progress.contains("blobs")) return lines;
  for (const auto& b : progress["blobs"]) {
    std::string digest = b.value("digest", "");
    std::string id = digest.substr(digest.find(':') == std::string::npos ? 0 : digest.find(':') + 1, 12);
    int64_t total = b.value("total", int64_t{-1});
    uint64_t done = b.value("done", uint64_t{0});
    std::string line = id + ": ";
    if (b.value("complete", false)) {
      line += "done";
      if (total >= 0) line += " (" + humanBytes(static_cast<uint64_t>(total)) + ")";
    } else if (total > 0) {
      double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
      int filled = static_cast<int>(frac * bar_width);
      std::string bar(static_cast<size_t>(bar_width), ' ');
      for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
      if (filled < bar_width) bar[static_cast<size_t>(filled)] = '>';
      line += "[" + bar + "] " + humanBytes(done) + "/" + humanBytes(static_cast<uint64_t>(total));
    } else {
      line += humanBytes(done);
    }
    lines.push_back(line);
  }
  return lines;
}

}  // namespace berth::cli
