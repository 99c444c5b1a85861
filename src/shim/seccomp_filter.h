// The seccomp filter `runc exec` (1.1.5, as Debian 12 ships it) loads into an exec'd process,
// built by berth-shim the way runc's InitSeccomp builds it: libseccomp (the same shared library
// runc uses) with runc's rule order, action mapping and rule splitting, and runc's -ENOSYS
// stub in front (docs/exec-in-monitor.md, §5).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <map>
#include <vector>

#include "shim/protocol.h"

namespace berth::shim {

struct SeccompProgram {
  std::vector<sock_filter> insns;  // empty: the spec asks for no filter (runc loads none)
  size_t stub_size = 0;            // the -ENOSYS stub's instructions at the front
};

// Builds, from config.json's `linux.seccomp`, the program runc would load with
// prctl(PR_SET_SECCOMP). An error names what the shim does not build as runc would (a notify
// action, flags, an architecture or action runc does not know); such an exec goes to runc.
[[nodiscard]] Outcome buildRuncSeccompProgram(const Json& seccomp, SeccompProgram* out);

// runc's generateEnosysStub (patchbpf/enosys_linux.go). `last` maps each native architecture
// (an AUDIT_ARCH_ value) to the largest syscall number the profile names for each libseccomp
// architecture of it (x86_64 and x32 share one). runc walks Go maps, so the order of its
// per-architecture sections varies from exec to exec; here they go in ascending order, which
// is one of runc's orders. A jump that would need runc's long-jump form (more than 255
// instructions, which no set of runc's 16 architectures reaches) is an error.
using LastSyscalls = std::map<uint32_t, std::map<uint32_t, int32_t>>;
[[nodiscard]] Outcome runcEnosysStub(const LastSyscalls& last, std::vector<sock_filter>* out);

}  // namespace berth::shim
