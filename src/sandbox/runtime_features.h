// What an OCI runtime and this kernel can do for a handler's containers, found out once when
// berthd starts: what RuntimeStatus reports per handler and what CreateContainer may ask for.
#pragma once

#include <string>

namespace berth::sandbox {

struct RuntimeFeatures {
  // Recursive read-only mounts: the runtime knows the "rro" mount option (`<runtime>
  // features`, runc 1.1 and later) and the kernel has mount_setattr (5.12).
  bool recursive_read_only = false;
  std::string recursive_read_only_why;  // why not, when false
  // The runtime can join a user namespace (`<runtime> features` lists it). Pods get user
  // namespaces of their own only where berth can also make idmapped overlay roots.
  bool user_namespaces = false;
  std::string user_namespaces_why;  // why not, when false
};

// Runs `<runtime_path> features` (bounded: 5 s) and asks the kernel. A runtime without the
// `features` command is taken to support none of them.
RuntimeFeatures probeRuntimeFeatures(const std::string& runtime_path);

}  // namespace berth::sandbox
