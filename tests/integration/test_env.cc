// tests/env access for integration tests.
#include "test_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "berthd_fixture.h"

namespace berth::testing {
namespace {

const nlohmann::json& env() {
  static const nlohmann::json j = [] {
    const char* dir = std::getenv("BERTH_TEST_ENV_DIR");
    if (dir == nullptr) {
      ADD_FAILURE() << "BERTH_TEST_ENV_DIR is not set: run through ctest, or start "
                       "tests/env/testenv.sh up DIR and export BERTH_TEST_ENV_DIR=DIR";
      return nlohmann::json::object();
    }
    std::ifstream in(std::string(dir) + "/env.json");
    return nlohmann::json::parse(in, nullptr, false);
  }();
  return j;
}

}  // namespace

std::string envDir() {
  const char* dir = std::getenv("BERTH_TEST_ENV_DIR");
  return dir != nullptr ? dir : "";
}

std::string envKey(const std::string& key) {
  const auto& j = env();
  if (!j.is_object() || !j.contains(key)) {
    ADD_FAILURE() << "test env has no key " << key;
    return "";
  }
  return j[key].get<std::string>();
}

nlohmann::json pushImage(const nlohmann::json& spec, bool to_auth_registry) {
  std::string spec_path = envDir() + "/spec-" + std::to_string(::getpid()) + "-" +
                          std::to_string(std::rand()) + ".json";
  std::ofstream(spec_path) << spec.dump();
  std::vector<std::string> argv = {"/usr/bin/python3", std::string(BERTH_SOURCE_DIR) + "/tests/env/mkimage.py",
                                   "push", spec_path, "--registry"};
  if (to_auth_registry) {
    argv.insert(argv.end(), {envKey("BERTH_TEST_AUTH_REGISTRY"), "--username",
                             envKey("BERTH_TEST_AUTH_USER"), "--password",
                             envKey("BERTH_TEST_AUTH_PASSWORD")});
  } else {
    argv.push_back(envKey("BERTH_TEST_REGISTRY"));
  }
  RunResult r = runProgram(argv, 120);
  std::remove(spec_path.c_str());
  if (r.exit_code != 0) {
    ADD_FAILURE() << "mkimage push failed: " << r.err;
    return {};
  }
  return nlohmann::json::parse(r.out, nullptr, false);
}

std::string registryBlobPath(const std::string& digest) {
  std::string hex = digest.substr(digest.find(':') + 1);
  return envDir() + "/registry/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex +
         "/data";
}

int registryBlobGets(const std::string& repo) {
  std::ifstream in(envDir() + "/registry.log");
  std::string needle = "\"GET /v2/" + repo + "/blobs/sha256:";
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

nlohmann::json pushUniqueImage(const std::string& name) {
  std::string repo = "berth-test/" + name + "-" + std::to_string(::getpid());
  nlohmann::json spec = {
      {"repo", repo},
      {"tags", {"1"}},
      {"layers",
       {{{"entries",
          {{{"type", "file"}, {"path", "/id"}, {"content", repo + std::to_string(std::rand())}}}}}}},
      {"config", nlohmann::json::object()}};
  nlohmann::json pushed = pushImage(spec);
  pushed["repo"] = repo;
  return pushed;
}

}  // namespace berth::testing
