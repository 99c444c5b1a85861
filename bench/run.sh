#!/usr/bin/env bash
# Runs the benchmarks against a temporary berthd (own root, state and socket), then stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
tmp=$(mktemp -d /tmp/berth-bench-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
  # runc removes each pod's cgroup but not berth's parent; drop it when nothing uses it.
  for c in /sys/fs/cgroup/*/berth; do rmdir "$c" 2>/dev/null || true; done
}
trap cleanup EXIT
cat >"$tmp/config.toml" <<CFG
root = "$tmp/root"
state = "$tmp/state"
[grpc]
address = "$tmp/state/berth.sock"
[log]
level = "warn"
CFG
"$build/bin/berthd" --config "$tmp/config.toml" 2>"$tmp/berthd.log" &
pid=$!
for _ in $(seq 1 100); do
  [ -S "$tmp/state/berth.sock" ] && break
  sleep 0.05
done
"$build/bin/cri_latency" -r "unix://$tmp/state/berth.sock"
"$build/bin/pod_latency" -r "unix://$tmp/state/berth.sock" -n "${PODS:-100}"
if [ -n "${BENCH_IMAGE:-}" ]; then
  # The tool pulls the image itself (it needs /bin/sh, sleep and /bin/true, e.g. busybox).
  "$build/bin/container_latency" -r "unix://$tmp/state/berth.sock" -n "${CONTAINERS:-100}" \
    --image "$BENCH_IMAGE"
else
  echo "container_latency skipped: set BENCH_IMAGE (e.g. docker.io/library/busybox:1.36)" >&2
fi
