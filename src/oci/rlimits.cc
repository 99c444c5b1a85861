#include "oci/rlimits.h"

#include <sys/resource.h>

#include <charconv>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace berth::oci {
namespace {

const std::map<std::string_view, const char*>& ulimitTypes() {
  static const std::map<std::string_view, const char*> m = {{"as", "RLIMIT_AS"},
                                                            {"core", "RLIMIT_CORE"},
                                                            {"cpu", "RLIMIT_CPU"},
                                                            {"data", "RLIMIT_DATA"},
                                                            {"fsize", "RLIMIT_FSIZE"},
                                                            {"locks", "RLIMIT_LOCKS"},
                                                            {"memlock", "RLIMIT_MEMLOCK"},
                                                            {"msgqueue", "RLIMIT_MSGQUEUE"},
                                                            {"nice", "RLIMIT_NICE"},
                                                            {"nofile", "RLIMIT_NOFILE"},
                                                            {"nproc", "RLIMIT_NPROC"},
                                                            {"rss", "RLIMIT_RSS"},
                                                            {"rtprio", "RLIMIT_RTPRIO"},
                                                            {"rttime", "RLIMIT_RTTIME"},
                                                            {"sigpending", "RLIMIT_SIGPENDING"},
                                                            {"stack", "RLIMIT_STACK"}};
  return m;
}

// A limit: a non-negative integer, or -1 for unlimited.
bool parseValue(std::string_view s, uint64_t* out) {
  if (s == "-1") {
    *out = RLIM_INFINITY;
    return true;
  }
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

absl::StatusOr<Rlimit> parseUlimit(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("ulimit \"", text, "\": ", why));
  };
  size_t eq = text.find('=');
  if (eq == std::string::npos) return bad("expected name=soft:hard or name=value");
  auto type = ulimitTypes().find(std::string_view(text).substr(0, eq));
  if (type == ulimitTypes().end()) {
    std::string known;
    for (const auto& [name, _] : ulimitTypes())
      absl::StrAppend(&known, known.empty() ? "" : ", ", std::string(name));
    return bad(absl::StrCat("unknown name (known: ", known, ")"));
  }
  std::string_view values = std::string_view(text).substr(eq + 1);
  size_t colon = values.find(':');
  Rlimit r{.type = type->second};
  if (!parseValue(values.substr(0, colon), &r.soft)) return bad("the soft limit is not a number");
  r.hard = r.soft;
  if (colon != std::string_view::npos && !parseValue(values.substr(colon + 1), &r.hard)) {
    return bad("the hard limit is not a number");
  }
  if (r.soft > r.hard) return bad("the soft limit exceeds the hard one");
  return r;
}

absl::StatusOr<std::vector<Rlimit>> parseUlimits(const std::vector<std::string>& texts) {
  std::vector<Rlimit> out;
  std::set<std::string> seen;
  for (const std::string& t : texts) {
    auto r = parseUlimit(t);
    if (!r.ok()) return r.status();
    if (!seen.insert(r->type).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("ulimit \"", t, "\": ", r->type, " is set twice"));
    }
    out.push_back(*std::move(r));
  }
  return out;
}

nlohmann::json rlimitsJson(const std::vector<Rlimit>& limits) {
  nlohmann::json out = nlohmann::json::array();
  for (const Rlimit& r : limits)
    out.push_back({{"type", r.type}, {"hard", r.hard}, {"soft", r.soft}});
  return out;
}

}  // namespace berth::oci
