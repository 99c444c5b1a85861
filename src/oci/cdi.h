// CDI (Container Device Interface) devices: what DRA drivers and GPU stacks hand to containers.
// A CRI CDIDevice (or a `cdi.k8s.io/<key>` annotation, comma-separated) names a device as
// "vendor/class=name"; spec files (JSON or YAML) in the spec directories say what it means:
// device nodes, mounts, environment, hooks, extra groups. Applied as the CDI library
// (tags.cncf.io/container-device-interface, pkg/cdi ContainerEdits.Apply) applies them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::oci {

inline constexpr char kCdiAnnotationPrefix[] = "cdi.k8s.io/";

// A spec file's text, validated: a known cdiVersion (0.3.0 to 1.1.0) at least the one its
// fields need, a "vendor/class" kind, devices with valid names and edits. InvalidArgument
// names `what` (the file) and the problem.
[[nodiscard]] absl::StatusOr<nlohmann::json> parseCdiSpec(const std::string& text, bool yaml,
                                                          const std::string& what);

// Applies the devices `names` ("vendor/class=name") from the spec files in `spec_dirs` (*.json,
// *.yaml, *.yml, read now; a device in a later directory wins) to the OCI `spec`: each device's
// edits, and once per spec file its spec-wide edits. InvalidArgument names every device that
// resolves to nothing (with the spec files that could not be read) or whose edits cannot be
// applied (an edit runc 1.1.5 would ignore, such as netDevices, is refused).
[[nodiscard]] absl::Status injectCdiDevices(const std::vector<std::string>& spec_dirs,
                                            const std::vector<std::string>& names,
                                            nlohmann::json& spec);

}  // namespace berth::oci
