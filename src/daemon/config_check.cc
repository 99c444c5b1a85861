// Host checks of a configuration: every referenced program, folder and file.
#include "daemon/config_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "image/registry_hosts_dir.h"
#include "network/cni.h"

namespace berth::daemon {
namespace {

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

}  // namespace

ConfigCheck checkConfig(const Config& c) {
  ConfigCheck out;
  auto problem = [&out](std::string s) { out.problems.push_back(std::move(s)); };
  auto note = [&out](std::string s) { out.notes.push_back(std::move(s)); };

  for (const auto& [name, h] : c.cri.runtimes) {
    if (auto found = findExecutable(h.runtime_path); !found.ok()) {
      problem(absl::StrCat("cri.runtimes.", name, ".runtime_path: \"", h.runtime_path,
                           "\" is not an executable program (in PATH or as a path)"));
    }
  }
  if (!c.cri.sandbox_image.empty()) {
    note(absl::StrCat("cri.sandbox_image \"", c.cri.sandbox_image,
                      "\" is pulled at the first RunPodSandbox"));
  }
  bool any_bin_dir = false;
  for (const std::string& d : c.cni.bin_dirs) any_bin_dir = any_bin_dir || isDirectory(d);
  if (!any_bin_dir) problem("cni.bin_dirs: none of the folders exists");
  std::vector<std::string> cni_notes;
  for (std::string& p : network::CniManager::checkSetup({.conf_dir = c.cni.conf_dir,
                        .bin_dirs = c.cni.bin_dirs,
                        .default_network = c.cni.default_network,
                        .default_bridge = c.cni.default_bridge,
                        .default_subnet = c.cni.default_subnet},
                                                        &cni_notes)) {
    problem(std::move(p));
  }
  for (std::string& n : cni_notes) note(std::move(n));

  for (absl::string_view part : absl::StrSplit(c.image.config_path, ':', absl::SkipEmpty())) {
    const std::string root(part);
    if (!isDirectory(root)) {
      problem(absl::StrCat("image.config_path: ", root, " is not a folder"));
      continue;
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      if (!e.is_directory(ec)) continue;
      const std::string host = e.path().filename().string();
      auto endpoints = image::endpointsFromHostsDir(root, host, false);
      if (!endpoints.ok()) {
        problem(absl::StrCat("image.config_path: ", endpoints.status().message()));
        continue;
      }
      for (const auto& ep : endpoints->value_or(std::vector<image::RegistryEndpoint>{})) {
        for (const std::string* f : {&ep.ca_file, &ep.client_cert, &ep.client_key}) {
          if (!f->empty() && !readable(*f)) {
            problem(absl::StrCat("image.config_path: ", root, "/", host, "/hosts.toml names ", *f,
                                 ", which cannot be read"));
          }
        }
      }
    }
  }
  for (const auto& [domain, reg] : c.image.registries) {
    if (!reg.ca_file.empty() && !readable(reg.ca_file)) {
      problem(absl::StrCat("image.registries.\"", domain, "\".ca_file: ", reg.ca_file,
                           " cannot be read"));
    }
  }
  for (const std::string* f : {&c.streaming.tls_cert_file, &c.streaming.tls_key_file}) {
    if (!f->empty() && !readable(*f)) {
      problem(absl::StrCat("streaming: ", *f, " cannot be read"));
    }
  }
  for (const std::string& d : c.cri.cdi_spec_dirs) {
    if (!isDirectory(d))
      note(absl::StrCat("cri.cdi_spec_dirs: ", d, " does not exist (no CDI devices from it)"));
  }
  if (!findExecutable(c.cri.criu_path).ok()) {
    note(absl::StrCat("cri.criu_path: \"", c.cri.criu_path,
                      "\" not found: CheckpointContainer will answer FailedPrecondition"));
  }
  return out;
}

}  // namespace berth::daemon
