// Clamping a container's oom_score_adj to what this process may actually set: without
// CAP_SYS_RESOURCE (in the initial user namespace) the kernel refuses a value below the
// caller's own, and runc's init fails with EACCES (see machine-notes: -998 fails here).
#pragma once

namespace berth::oci {

// The value to ask the OCI runtime for: `wanted`, raised to `own` when this process cannot
// lower it (`can_lower` false). Pure; for tests and callers that know the facts.
int clampOomScoreAdj(int wanted, int own, bool can_lower = false);

// Reads /proc/self/oom_score_adj and whether this process holds CAP_SYS_RESOURCE in the initial
// user namespace, and clamps `wanted` accordingly. Logs once (logger "oci") the first time it
// clamps. Thread-safe.
int clampOomScoreAdj(int wanted);

}  // namespace berth::oci
