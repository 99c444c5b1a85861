// Named crash points, for failure tests of multi-step operations.
//
// `BERTH_CRASH_AT=<name>` in berthd's environment makes the process kill itself with SIGKILL
// when it reaches the point of that name, as a crash at that instant would (no destructor runs,
// nothing is flushed): a test then restarts berthd and checks that recovery finishes or undoes
// what was cut off and that nothing leaks. Before dying it writes "crash point <name>" to
// stderr, so that a test can tell the point was reached. Without the variable a crash point
// costs one load and a compare.
#pragma once

#include <array>
#include <string_view>

namespace berth {

// Every crash point, in the order of the steps of each operation. crashPoint() accepts only
// these names (a typo would make a test pass without ever crashing).
inline constexpr auto kCrashPoints = std::to_array<std::string_view>({
    // RunPodSandbox
    "pod.run.after_record",
    "pod.run.after_userns_pin",
    "pod.run.after_netns",
    "pod.run.after_cni_add",
    "pod.run.after_cni_record",
    "sandbox.create.after_pod_files",
    "sandbox.create.after_shim",
    "sandbox.start.after_start",
    "pod.run.before_reply",
    // StopPodSandbox
    "pod.stop.after_intent",
    "pod.stop.after_containers",
    "pod.stop.after_sandbox",
    "pod.stop.after_cni_del",
    "pod.stop.after_netns",
    // RemovePodSandbox
    "pod.remove.after_intent",
    "pod.remove.after_stop",
    "pod.remove.after_containers",
    "sandbox.shutdown.after_shim",
    "sandbox.shutdown.after_unmount",
    "pod.remove.after_shutdown",
    "pod.remove.after_record",
    // CreateContainer
    "container.create.after_name",
    "container.create.after_rootfs",
    "container.create.after_image_volumes",
    "container.create.after_idmapped_volumes",
    "container.create.after_record",
    "container.create.after_task",
    // StartContainer
    "container.start.before_start",
    "container.start.after_start",
    // CheckpointContainer
    "container.checkpoint.after_pause",
    "container.checkpoint.after_archive",
    // StopContainer
    "container.stop.after_intent",
    "container.stop.after_signal",
    // RemoveContainer
    "container.remove.after_intent",
    "container.remove.after_stop",
    "container.remove.after_cleanup",
    "container.remove.after_snapshot",
    "container.remove.after_dir",
    // PullImage
    "image.pull.after_manifest",
    "image.pull.after_layers",
    "image.pull.after_unpack",
    "image.pull.after_record",
    // RemoveImage
    "image.remove.after_record",
});

// Dies here when BERTH_CRASH_AT names this point. `name` must be one of kCrashPoints.
void crashPoint(std::string_view name);

// True when `name` is one of kCrashPoints.
bool isCrashPoint(std::string_view name);

}  // namespace berth
