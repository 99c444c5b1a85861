// Linux capability names as the OCI runtime spec spells them ("CAP_CHOWN"), containerd's
// default set for containers, and the full set this process holds (for privileged pods).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace berth::oci {

// containerd's default capabilities, in containerd's order.
const std::vector<std::string>& defaultCapabilities();

// The names of the capabilities whose bits are set in `mask` (bit n = capability n), in
// capability-number order. Bits the table does not know are left out.
std::vector<std::string> capabilityNames(uint64_t mask);

// Every capability in this process's bounding set (/proc/self/status CapBnd), like containerd's
// cap.Current(); when that cannot be read, every capability up to
// /proc/sys/kernel/cap_last_cap.
std::vector<std::string> currentCapabilities();

}  // namespace berth::oci
