// berthd configuration: built-in defaults, TOML loading with strict key checking, printing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::daemon {

// One runtime handler (what a pod's `runtime_handler` selects): its sandbox controller and
// the OCI runtime binary that runs its containers.
struct RuntimeHandler {
  std::string runtime_type = "io.containerd.runc.v2";
  std::string runtime_path;  // binary name (searched on PATH) or absolute path
  std::string runtime_root;  // the OCI runtime's --root; empty = <state>/runtime/<handler>
  std::string sandboxer = "podsandbox";
  // Who starts execs: "monitor" (berth-shim itself, where it can do exactly what the runtime
  // would; docs/exec-in-monitor.md) or "runtime" (`runtime exec`, always).
  std::string exec = "monitor";
  // Process rlimits of every container of the handler, CRI-O's default_ulimits:
  // "nofile=1024:2048" (soft:hard) or "core=0" (both); -1 is unlimited.
  std::vector<std::string> default_ulimits;
};

// How to reach one registry (keyed by the domain of image references, e.g. "docker.io",
// "registry.k8s.io", "127.0.0.1:5000").
struct RegistryConfig {
  std::vector<std::string> mirrors;  // "http://host:port" or "https://host[/prefix]", in order
  std::string ca_file;
  bool insecure_skip_verify = false;
  bool plain_http = false;  // reach the registry itself over http
  std::string username;
  std::string password;
  std::string auth;  // base64 "user:password"
  std::string identity_token;
};

struct Config {
  std::string root = "/var/lib/berth";
  std::string state = "/run/berth";
  std::string cgroup_parent = "/berth";
  struct Grpc {
    std::string address = "/run/berth/berth.sock";
    int gid = 0;
    int max_recv_message_size = 16 * 1024 * 1024;
    int shutdown_timeout_seconds = 10;
    // CRI connections open at once; more are refused (closed at once). Also kept below the fd
    // limit (see daemon/cri_listener.h).
    int max_connections = 1024;
    // A connection without a call for this long is closed (clients reconnect when they need to).
    int idle_connection_timeout_seconds = 300;
  } grpc;
  struct Log {
    std::string level = "info";
    std::string format = "text";
  } log;
  struct Image {
    int max_concurrent_downloads = 3;
    int progress_timeout_seconds = 60;
    int connect_timeout_seconds = 30;
    int retries = 3;
    // A transfer slower than this on average over progress_timeout_seconds is cut (and
    // resumed while its deadline allows).
    int min_transfer_rate_bytes_per_second = 1024;
    int request_timeout_seconds = 120;  // a manifest, config or token, all attempts included
    int blob_timeout_seconds = 3600;    // a layer blob, all attempts and mirrors included
    // Bounds on one layer: its uncompressed (and compressed) size, and its tar entries.
    int64_t max_layer_bytes = int64_t{32} << 30;
    int64_t max_layer_entries = 1'000'000;
    std::map<std::string, RegistryConfig> registries;
    // containerd's registry host directory (hosts.toml per host); empty: none.
    std::string config_path;
    // References or globs ("registry.k8s.io/*") reported pinned (kept by kubelet's image GC).
    std::vector<std::string> pinned_images;
  } image;
  struct Cni {
    std::string conf_dir = "/etc/cni/net.d";
    std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
    // With no config in conf_dir: a built-in bridge network (berthd --print-default-network).
    bool default_network = true;
    std::string default_bridge = "berth0";
    std::string default_subnet = "10.88.0.0/16";
    int plugin_timeout_seconds = 120;
  } cni;
  struct Cri {
    std::string sandbox_image;  // empty: the built-in berth-pause rootfs
    std::string default_runtime_handler = "runc";
    // Longer container log lines are split into partial ("P") entries.
    int max_container_log_line_size = 16384;
    // Stats: how often the slow parts are measured (writable layers, network counters, the
    // image filesystem), and how old CPU, memory and process counts may be in an answer.
    int stats_collect_period_seconds = 10;
    int stats_max_age_milliseconds = 1000;
    // Pids limit of a container whose CRI config sets none; 0: none.
    int64_t pids_limit = 4096;
    // CDI spec files (JSON or YAML); a device in a later directory wins (containerd's order).
    std::vector<std::string> cdi_spec_dirs = {"/etc/cdi", "/var/run/cdi"};
    // CRIU, for CheckpointContainer (through `runc --criu`).
    std::string criu_path = "criu";
    std::map<std::string, RuntimeHandler> runtimes = {
        {"runc", RuntimeHandler{.runtime_path = "runc"}},
        {"crun", RuntimeHandler{.runtime_path = "crun"}},
    };
  } cri;
  struct Metrics {
    std::string address;  // "host:port" of the Prometheus endpoint; empty = off
  } metrics;
  // The HTTP server behind the URLs of Exec, Attach and PortForward.
  struct Streaming {
    std::string address = "127.0.0.1";  // an IP literal
    int port = 0;                       // 0: an ephemeral port
    int token_ttl_seconds = 60;         // an unused URL expires after this long
    std::string tls_cert_file, tls_key_file;  // both: HTTPS; neither: HTTP
    int upgrade_timeout_seconds = 10;  // accept → valid token (TLS handshake included)
    int max_pending_per_peer = 16;     // connections of one client without a valid token yet
  } streaming;

  // Where each value came from, by the key's JSON pointer in configToJson() ("/log/level"):
  // the file's path, "default", or the command-line flag. Not a TOML key.
  std::map<std::string, std::string> sources;
};

// Parses TOML text over the built-in defaults. Unknown keys, wrong types and bad values are
// InvalidArgument naming the key (e.g. `config key "grpc.adress" is unknown`).
[[nodiscard]] absl::StatusOr<Config> parseConfig(const std::string& toml_text,
                                                 const std::string& source_name);

// Loads `path`. A missing file is fine only when `must_exist` is false (defaults are used).
[[nodiscard]] absl::StatusOr<Config> loadConfig(const std::string& path, bool must_exist);

// Checks values that depend on each other (e.g. the default handler must exist).
[[nodiscard]] absl::Status validateConfig(const Config& config);

// The complete configuration as TOML, one comment line per key; parseConfig() reads it back.
std::string renderConfig(const Config& config);

// The effective configuration as JSON (for `Status` verbose info and logs).
nlohmann::json configToJson(const Config& config);

}  // namespace berth::daemon
