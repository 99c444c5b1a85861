// What berth tells CNI plugins about a pod (CNI_ARGS and capability values, including the
// bandwidth annotations as Kubernetes quantities) and what it reads back from a result.
#include <cctype>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "network/cni.h"
#include "network/cni_internal.h"

namespace berth::network {
namespace cni_internal {
namespace {

using nlohmann::json;

constexpr char kIngressAnnotation[] = "kubernetes.io/ingress-bandwidth";
constexpr char kEgressAnnotation[] = "kubernetes.io/egress-bandwidth";

// The burst containerd sends with a rate (Go's math.MaxUint32): effectively unlimited.
constexpr uint64_t kBandwidthBurst = 4294967295u;

// Limits Kubernetes puts on bandwidth annotations (1k and 1P bits per second).
constexpr uint64_t kMinBandwidth = 1000;
constexpr uint64_t kMaxBandwidth = 1000000000000000;

struct QuantitySuffix {
  const char* text;
  int exp10;
  int exp2;
};

constexpr QuantitySuffix kSuffixes[] = {
    {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
};

// Parses the "e<int>" / "E<int>" form of a quantity suffix.
bool parseExponent(const std::string& s, int* exp) {
  if (s.size() < 2 || (s[0] != 'e' && s[0] != 'E')) return false;
  size_t i = 1;
  bool negative = false;
  if (s[i] == '+' || s[i] == '-') negative = s[i++] == '-';
  if (i == s.size() || s.size() - i > 4) return false;
  int v = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *exp = negative ? -v : v;
  return true;
}

absl::Status addBandwidth(const CniAttachment& a, const char* annotation, const char* rate_key,
                          const char* burst_key, json* out) {
  auto it = a.annotations.find(annotation);
  if (it == a.annotations.end()) return absl::OkStatus();
  absl::StatusOr<uint64_t> rate = parseBandwidth(it->second);
  if (!rate.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotation ", annotation, ": ", rate.status().message()));
  }
  (*out)[rate_key] = *rate;
  (*out)[burst_key] = kBandwidthBurst;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> parseBandwidth(const std::string& quantity) {
  using Int = __int128;
  auto bad = [&quantity](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("\"", quantity, "\" ", why));
  };
  size_t i = 0;
  bool negative = false;
  if (i < quantity.size() && (quantity[i] == '+' || quantity[i] == '-')) {
    negative = quantity[i++] == '-';
  }
  // The number as an integer mantissa and a count of digits after the point.
  Int mantissa = 0;
  int frac_digits = 0, significant = 0;
  bool any_digit = false, seen_point = false;
  for (; i < quantity.size(); ++i) {
    char c = quantity[i];
    if (c == '.' && !seen_point) {
      seen_point = true;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    any_digit = true;
    if (mantissa != 0 || c != '0') ++significant;
    if (significant > 30) return bad("has too many digits");
    mantissa = mantissa * 10 + (c - '0');
    if (seen_point) ++frac_digits;
  }
  if (!any_digit) return bad("is not a quantity");

  std::string suffix = quantity.substr(i);
  int exp10 = 0, exp2 = 0;
  bool known = false;
  for (const QuantitySuffix& s : kSuffixes) {
    if (suffix == s.text) {
      exp10 = s.exp10;
      exp2 = s.exp2;
      known = true;
      break;
    }
  }
  if (!known && !parseExponent(suffix, &exp10)) return bad("has an unknown suffix");
  exp10 -= frac_digits;

  // value = mantissa * 2^exp2 * 10^exp10, rounded up; anything past kCap is far beyond 1P.
  const Int kCap = Int(1000000000000000000) * Int(1000000000000000000);
  Int x = mantissa;
  bool too_large = false;
  if (x != 0) {
    for (int k = 0; k < exp2 && !too_large; ++k) {
      if (x > kCap)
        too_large = true;
      else
        x *= 2;
    }
    for (int k = 0; k < exp10 && !too_large; ++k) {
      if (x > kCap)
        too_large = true;
      else
        x *= 10;
    }
    if (exp10 < 0 && !too_large) {
      if (-exp10 > 36) {
        x = 1;
      } else {
        Int div = 1;
        for (int k = 0; k < -exp10; ++k) div *= 10;
        x = (x + div - 1) / div;
      }
    }
  }
  if ((negative && x != 0) || (!too_large && x < Int(kMinBandwidth))) {
    return bad("is unreasonably small (< 1kbit)");
  }
  if (too_large || x > Int(kMaxBandwidth)) return bad("is unreasonably large (> 1Pbit)");
  return static_cast<uint64_t>(x);
}

absl::StatusOr<json> capabilityArgs(const CniAttachment& a, bool strict) {
  json caps = json::object();

  json ports = json::array();
  for (const CniPortMapping& pm : a.port_mappings) {
    if (pm.host_port <= 0) continue;
    std::string protocol = absl::AsciiStrToLower(pm.protocol);
    json m = {{"hostPort", pm.host_port},
              {"containerPort", pm.container_port},
              {"protocol", protocol.empty() ? "tcp" : protocol}};
    if (!pm.host_ip.empty()) m["hostIP"] = pm.host_ip;
    ports.push_back(std::move(m));
  }
  if (!ports.empty()) caps["portMappings"] = std::move(ports);

  if (!a.dns_servers.empty() || !a.dns_searches.empty() || !a.dns_options.empty()) {
    caps["dns"] = {
        {"servers", a.dns_servers}, {"searches", a.dns_searches}, {"options", a.dns_options}};
  }

  json annotations = json::object();
  for (const auto& [k, v] : a.annotations) annotations[k] = v;
  caps["io.kubernetes.cri.pod-annotations"] = std::move(annotations);

  json bandwidth = json::object();
  absl::Status st = addBandwidth(a, kIngressAnnotation, "ingressRate", "ingressBurst", &bandwidth);
  if (st.ok()) st = addBandwidth(a, kEgressAnnotation, "egressRate", "egressBurst", &bandwidth);
  if (!st.ok()) {
    if (strict) return st;
    logging::get("cni")->warn("pod {}: leaving out bandwidth: {}", a.container_id, st.message());
    bandwidth = json::object();
  }
  if (!bandwidth.empty()) caps["bandwidth"] = std::move(bandwidth);
  return caps;
}

std::string cniArgs(const CniAttachment& a) {
  return absl::StrCat("IgnoreUnknown=1;K8S_POD_NAMESPACE=", a.pod_namespace,
                      ";K8S_POD_NAME=", a.pod_name, ";K8S_POD_INFRA_CONTAINER_ID=", a.container_id,
                      ";K8S_POD_UID=", a.pod_uid);
}

std::string dumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace cni_internal

std::vector<std::string> resultIps(const nlohmann::json& result) {
  std::vector<std::string> v4, v6;
  auto add = [&](std::string address, const std::string& version) {
    if (size_t slash = address.find('/'); slash != std::string::npos) address.resize(slash);
    if (address.empty()) return;
    bool is_v6 = version.empty() ? address.find(':') != std::string::npos : version == "6";
    (is_v6 ? v6 : v4).push_back(std::move(address));
  };
  if (!result.is_object()) return {};
  if (auto ips = result.find("ips"); ips != result.end() && ips->is_array()) {
    for (const auto& ip : *ips) {
      if (!ip.is_object()) continue;
      auto address = ip.find("address");
      if (address == ip.end() || !address->is_string()) continue;
      auto version = ip.find("version");
      add(address->get<std::string>(),
          version != ip.end() && version->is_string() ? version->get<std::string>() : "");
    }
  }
  // 0.2.0 results ("ip4"/"ip6"), in case a plugin answers in the oldest format.
  for (const char* key : {"ip4", "ip6"}) {
    auto entry = result.find(key);
    if (entry == result.end() || !entry->is_object()) continue;
    auto ip = entry->find("ip");
    if (ip != entry->end() && ip->is_string())
      add(ip->get<std::string>(), key[2] == '6' ? "6" : "4");
  }
  v4.insert(v4.end(), std::make_move_iterator(v6.begin()), std::make_move_iterator(v6.end()));
  return v4;
}

}  // namespace berth::network
