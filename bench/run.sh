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
  # The bridge plugin leaves its bridge behind.
  if [ -e /sys/class/net/bbench0 ]; then ip link del bbench0 || true; fi
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
[cni]
conf_dir = "$tmp/net.d"
default_network = false
CFG
# Pod networking for --pod-network: a bridge of its own holding the host's address, a
# benchmark-range subnet, no gateway (so IP forwarding stays off) and no NAT.
ip link add bbench0 type bridge
ip addr add 198.19.255.254/16 dev bbench0
ip link set bbench0 up
mkdir -p "$tmp/net.d"
cat >"$tmp/net.d/10-bench.conflist" <<NET
{"cniVersion": "1.0.0", "name": "berth-bench", "plugins": [
  {"type": "bridge", "bridge": "bbench0", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.19.0.0/16", "rangeEnd": "198.19.255.250"}]],
            "dataDir": "$tmp/ipam"}}]}
NET
"$build/bin/berthd" --config "$tmp/config.toml" 2>"$tmp/berthd.log" &
pid=$!
for _ in $(seq 1 100); do
  [ -S "$tmp/state/berth.sock" ] && break
  sleep 0.05
done
"$build/bin/cri_latency" -r "unix://$tmp/state/berth.sock"
"$build/bin/pod_latency" -r "unix://$tmp/state/berth.sock" -n "${PODS:-100}"
"$build/bin/pod_latency" -r "unix://$tmp/state/berth.sock" -n "${PODS:-100}" --pod-network
if [ -n "${BENCH_IMAGE:-}" ]; then
  # The tool pulls the image itself (it needs /bin/sh, sleep and /bin/true, e.g. busybox).
  "$build/bin/container_latency" -r "unix://$tmp/state/berth.sock" -n "${CONTAINERS:-100}" \
    --image "$BENCH_IMAGE"
  # 110 pods x 3 containers, as on a full node; --server-pid adds berthd's CPU time.
  "$build/bin/stats_latency" -r "unix://$tmp/state/berth.sock" -n "${STATS_PODS:-110}" \
    --image "$BENCH_IMAGE" --server-pid "$pid"
else
  echo "container_latency and stats_latency skipped: set BENCH_IMAGE (e.g. docker.io/library/busybox:1.36)" >&2
fi
