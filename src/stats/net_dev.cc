// /proc/<pid>/net/dev parsing. After two header lines each line is
// "  name: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast
//          tx_bytes tx_packets tx_errs tx_drop tx_fifo tx_colls tx_carrier tx_compressed".
#include "stats/net_dev.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "stats/text_files.h"

namespace berth::stats {
namespace {

constexpr size_t kRxBytes = 0;
constexpr size_t kRxErrors = 2;
constexpr size_t kTxBytes = 8;
constexpr size_t kTxErrors = 10;
constexpr size_t kFields = 16;

constexpr std::string_view kDefaultInterface = "eth0";

std::optional<InterfaceSample> parseLine(std::string_view line) {
  // Large counters can touch the colon ("eth0:123"), so split on it rather than on spaces.
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  InterfaceSample s;
  s.name = std::string(trimSpace(line.substr(0, colon)));
  if (s.name.empty()) return std::nullopt;
  std::vector<std::string_view> fields = splitNonEmpty(line.substr(colon + 1), " \t");
  if (fields.size() < kFields) return std::nullopt;
  std::optional<uint64_t> rx_bytes = parseUint(fields[kRxBytes]);
  std::optional<uint64_t> rx_errors = parseUint(fields[kRxErrors]);
  std::optional<uint64_t> tx_bytes = parseUint(fields[kTxBytes]);
  std::optional<uint64_t> tx_errors = parseUint(fields[kTxErrors]);
  if (!rx_bytes || !rx_errors || !tx_bytes || !tx_errors) return std::nullopt;
  s.rx_bytes = *rx_bytes;
  s.rx_errors = *rx_errors;
  s.tx_bytes = *tx_bytes;
  s.tx_errors = *tx_errors;
  return s;
}

}  // namespace

std::vector<InterfaceSample> parseNetDev(std::string_view text) {
  std::vector<InterfaceSample> out;
  // The two header lines have '|' but no ':' and are dropped by parseLine.
  for (std::string_view line : splitNonEmpty(text, "\n")) {
    std::optional<InterfaceSample> s = parseLine(line);
    if (s && s->name != "lo") out.push_back(std::move(*s));
  }
  std::stable_partition(out.begin(), out.end(),
                        [](const InterfaceSample& s) { return s.name == kDefaultInterface; });
  return out;
}

std::optional<NetworkSample> readNetwork(const std::string& proc_root, int pid, int64_t now_ns) {
  if (pid <= 0) return std::nullopt;
  std::optional<std::string> text = readTextFile(absl::StrCat(proc_root, "/", pid, "/net/dev"));
  if (!text) return std::nullopt;
  NetworkSample n;
  n.timestamp_ns = now_ns;
  n.interfaces = parseNetDev(*text);
  return n;
}

}  // namespace berth::stats
