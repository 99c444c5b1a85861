// Rendering of a pull's progress (from ImageStatus verbose info "pullProgress").
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace berth::cli {

// One line per blob: short digest, a bar `bar_width` wide (when the size is known), and
// bytes done / total; a finished blob reads "done".
std::vector<std::string> progressLines(const nlohmann::json& progress, int bar_width);

// "12.3MB" style sizes.
std::string humanBytes(uint64_t bytes);

}  // namespace berth::cli
