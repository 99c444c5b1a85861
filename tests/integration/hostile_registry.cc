// The hostile registry test helper: runs tests/env/hostile_registry.py as a child process.
#include "hostile_registry.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "berthd_fixture.h"
#include "common/unique_fd.h"
#include "test_env.h"

namespace berth::testing {
namespace {

constexpr int kStopGraceS = 10;
constexpr int kHttpTimeoutS = 10;

// Waits up to `timeout_s` for `pid`; the raw wait status, or nullopt if it is still running.
std::optional<int> waitExit(pid_t pid, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;  // not our child any more: nothing left to wait for
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// GET `path` from 127.0.0.1:`port` as HTTP/1.0 (so the server closes the connection after its
// answer): the body of a 200 answer, or nullopt with the reason in `error`.
std::optional<std::string> httpGet(int port, const std::string& path, std::string* error) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    *error = std::string("socket: ") + std::strerror(errno);
    return std::nullopt;
  }
  timeval tv{kHttpTimeoutS, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return std::nullopt;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  for (size_t off = 0; off < request.size();) {
    ssize_t n = ::send(fd.get(), request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      *error = std::string("send: ") + std::strerror(errno);
      return std::nullopt;
    }
    off += static_cast<size_t>(n);
  }
  std::string response;
  std::array<char, 65536> buf;
  for (ssize_t n; (n = ::recv(fd.get(), buf.data(), buf.size(), 0)) != 0;) {
    if (n < 0) {
      *error = std::string("recv: ") + std::strerror(errno);
      return std::nullopt;
    }
    response.append(buf.data(), static_cast<size_t>(n));
  }
  size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos || response.compare(0, 5, "HTTP/") != 0 ||
      response.find(" 200 ") > response.find("\r\n")) {
    *error = "unexpected answer: " + response.substr(0, 200);
    return std::nullopt;
  }
  return response.substr(end + 4);
}

int64_t counter(const nlohmann::json& stats, const char* table, const std::string& path) {
  if (!stats.is_object() || !stats.contains(table)) return 0;
  const nlohmann::json& t = stats[table];
  auto it = t.find(path);
  return it != t.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

HostileRegistry::HostileRegistry(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)) {
  std::string tmpl = "/tmp/berth-hostile-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  dir_ = tmpl;
  // The bomb blobs take seconds to build: keep them for the whole test run in the test
  // environment's dir (testenv.sh down removes it), else in our own dir.
  std::string env_dir = envDir();
  cache_dir_ = !env_dir.empty() && std::filesystem::is_directory(env_dir)
                   ? env_dir + "/hostile-cache"
                   : dir_ + "/cache";
}

HostileRegistry::~HostileRegistry() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool HostileRegistry::start(int timeout_s) {
  if (pid_ > 0) return true;
  const std::string port_file = dir_ + "/port";
  const std::string log_file = dir_ + "/registry.log";
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   sourceDir() + "/tests/env/hostile_registry.py",
                                   "serve",
                                   "--port-file",
                                   port_file,
                                   "--info-file",
                                   dir_ + "/info.json",
                                   "--cache-dir",
                                   cache_dir_};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ == 0) {
    // Only async-signal-safe calls here: the test process may have threads (gRPC).
    ::setpgid(0, 0);
    int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pid_ < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    pid_ = -1;
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (!std::filesystem::exists(port_file)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // exited during start-up; the reason is in log()
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The script writes both files atomically, the info file first.
  port_ = std::atoi(slurp(port_file).c_str());
  info_ = nlohmann::json::parse(slurp(dir_ + "/info.json"), nullptr, false);
  if (port_ <= 0 || !info_.is_object() || !info_.contains("host") || !info_["host"].is_string() ||
      !info_.contains("scenarios")) {
    ADD_FAILURE() << "hostile registry: bad port or info file in " << dir_;
    stop();
    return false;
  }
  host_ = info_["host"].get<std::string>();
  return true;
}

int HostileRegistry::stop() {
  if (pid_ <= 0) return -1000;
  ::kill(pid_, SIGTERM);
  std::optional<int> status = waitExit(pid_, kStopGraceS);
  if (!status) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status = st;
  }
  pid_ = -1;
  if (WIFEXITED(*status)) return WEXITSTATUS(*status);
  if (WIFSIGNALED(*status)) return -WTERMSIG(*status);
  return -1000;
}

std::string HostileRegistry::log() const { return slurp(dir_ + "/registry.log"); }

const nlohmann::json& HostileRegistry::scenario(const std::string& name) const {
  static const nlohmann::json kNull;
  if (info_.is_object() && info_.contains("scenarios") && info_["scenarios"].contains(name)) {
    return info_["scenarios"][name];
  }
  ADD_FAILURE() << "hostile registry has no scenario \"" << name << "\"";
  return kNull;
}

std::string HostileRegistry::ref(const std::string& name) const {
  const nlohmann::json& s = scenario(name);
  return s.is_object() ? s.value("ref", "") : "";
}

std::string HostileRegistry::manifestPath(const std::string& name,
                                          const std::string& reference) const {
  return "/v2/hostile/" + name + "/manifests/" + reference;
}

std::string HostileRegistry::blobPath(const std::string& name, const std::string& digest) const {
  return "/v2/hostile/" + name + "/blobs/" + digest;
}

std::string HostileRegistry::layerPath(const std::string& name) const {
  const nlohmann::json& s = scenario(name);
  if (!s.is_object() || !s.contains("layer_digests") || s["layer_digests"].empty()) return "";
  return blobPath(name, s["layer_digests"][0].get<std::string>());
}

nlohmann::json HostileRegistry::stats() const {
  std::string error;
  std::optional<std::string> body =
      pid_ > 0 ? httpGet(port_, "/_stats", &error) : std::optional<std::string>();
  if (!body) {
    ADD_FAILURE() << "hostile registry: GET /_stats: " << (pid_ > 0 ? error : "not running");
    return nullptr;
  }
  nlohmann::json j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << "hostile registry: /_stats is not JSON: " << body->substr(0, 200);
    return nullptr;
  }
  return j;
}

int64_t HostileRegistry::requests(const std::string& path) const {
  return counter(stats(), "requests", path);
}

int64_t HostileRegistry::bytesSent(const std::string& path) const {
  return counter(stats(), "bytes_sent", path);
}

}  // namespace berth::testing
