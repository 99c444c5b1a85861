#!/usr/bin/env bash
# berth and containerd side by side: the same client (kubelet_latency) against a berthd and a
# containerd (Debian's, CRI plugin, runc shim v2, the same runc), each on a root, state, socket
# and cgroup parent of its own, images from one registry on loopback, in alternating rounds.
# Prints each measure's p50 and p99 for both (medians over the rounds), the p50 ratio
# berth/containerd, and the ratio of server shares (the time minus one client round trip, the
# Version p50 of the same run, per call). Run as root on Debian 12 after scripts/build.sh.
#
#   bench/side_by_side.sh [ROUNDS]          environment: PODS (50), CONTAINERS (3),
#                                           POD_NETWORK=1 (pods on a CNI bridge, one per runtime),
#                                           PULL=0 (no pull measure: a 4-layer ~100 MB image
#                                           pulled through the CRI and removed, each round),
#                                           EXEC=runtime (execs through runc exec; default:
#                                           monitor, berth-shim starts them itself),
#                                           SECCOMP=1 (containers under RuntimeDefault seccomp)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
rounds=${1:-3}
pods=${PODS:-50}
containers=${CONTAINERS:-3}
if [ "$(id -u)" -ne 0 ]; then
  echo "side_by_side.sh: run as root" >&2
  exit 1
fi
"$here/scripts/install-deps.sh" bench >/dev/null
"$here/scripts/install-deps.sh" test >/dev/null

tmp=$(mktemp -d /tmp/berth-side-XXXXXX)
berth_pid=
ctd_pid=
cleanup() {
  for p in $berth_pid $ctd_pid; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  "$here/tests/env/testenv.sh" down "$tmp/env" >/dev/null 2>&1 || true
  # What a runtime may have left mounted below its root (nothing, when every pod was removed).
  { grep -o " $tmp[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  for c in /sys/fs/cgroup/*/berth /sys/fs/cgroup/*/k8s.io; do rmdir "$c" 2>/dev/null || true; done
  for b in bsbs0 bsbs1; do [ -e /sys/class/net/$b ] && ip link del $b; done
  return 0
}
trap cleanup EXIT

"$here/tests/env/testenv.sh" up "$tmp/env" >/dev/null
# shellcheck disable=SC1091
. "$tmp/env/env"
image=$BERTH_TEST_IMAGE_BUSYBOX
registry=$BERTH_TEST_REGISTRY
# containerd needs a sandbox image: busybox sleeping stands in for pause (berth runs its
# built-in pause, as it does by default).
cat >"$tmp/pause.json" <<JSON
{"repo": "berth-bench/pause", "tags": ["1.0"], "layers": [{"preset": "busybox"}],
 "config": {"Env": ["PATH=/bin"], "Entrypoint": ["sleep", "2147483647"]}}
JSON
python3 "$here/tests/env/mkimage.py" push "$tmp/pause.json" --registry "$registry" >/dev/null
# The pull measure: bench/pull.sh's image (4 x 25 MB of random bytes, gzip'd), pulled
# by the client with one PullImage call (timed like every other call) once per round, and
# removed again (untimed).
pull_ref=
if [ "${PULL:-1}" != 0 ]; then
  pull_ref=$("$here/bench/push_big_image.sh" "$registry" "$tmp")
fi

mkdir -p "$tmp/berth/net.d" "$tmp/ctd/net.d"
# The same CNI network for both (bridge + host-local from containernetworking-plugins), each
# with a bridge and a benchmark-range subnet of its own, no gateway and no NAT.
net() {  # name bridge subnet dir
  cat >"$4/10-bench.conflist" <<NET
{"cniVersion": "1.0.0", "name": "$1", "plugins": [
  {"type": "bridge", "bridge": "$2", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$3"}]], "dataDir": "$4/../ipam"}}]}
NET
}
net berth-bench bsbs0 198.19.0.0/17 "$tmp/berth/net.d"
net ctd-bench bsbs1 198.19.128.0/17 "$tmp/ctd/net.d"
# berthd's own request histogram gives its server-side time per call.
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/berth/config.toml" <<CFG
root = "$tmp/berth/root"
state = "$tmp/berth/state"
cgroup_parent = "/berth"
[grpc]
address = "$tmp/berth/berth.sock"
[log]
level = "warn"
[cni]
conf_dir = "$tmp/berth/net.d"
default_network = false
[image.registries."$registry"]
plain_http = true
[metrics]
address = "127.0.0.1:$metrics_port"
[cri.runtimes.runc]
runtime_path = "runc"
exec = "${EXEC:-monitor}"
CFG
cat >"$tmp/ctd/config.toml" <<CFG
version = 2
root = "$tmp/ctd/root"
state = "$tmp/ctd/state"
[grpc]
  address = "$tmp/ctd/containerd.sock"
[ttrpc]
  address = "$tmp/ctd/containerd.sock.ttrpc"
[debug]
  address = "$tmp/ctd/debug.sock"
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/ctd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # This machine's root lacks CAP_SYS_RESOURCE in the initial user namespace: runc cannot
  # lower oom_score_adj below berthd's own. berth clamps it the same way.
  restrict_oom_score_adj = true
  sandbox_image = "$registry/berth-bench/pause:1.0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$tmp/ctd/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$registry"]
    endpoint = ["http://$registry"]
CFG

wait_socket() {
  for _ in $(seq 1 200); do
    [ -S "$1" ] && return 0
    sleep 0.05
  done
  echo "side_by_side.sh: $1 did not appear" >&2
  return 1
}
"$build/bin/berthd" --config "$tmp/berth/config.toml" 2>"$tmp/berth/log" &
berth_pid=$!
containerd --config "$tmp/ctd/config.toml" 2>"$tmp/ctd/log" &
ctd_pid=$!
wait_socket "$tmp/berth/berth.sock"
wait_socket "$tmp/ctd/containerd.sock"

one() {  # one run of the client against runtime $1; RESULT lines to $2
  local name=$1 out=$2 sock pid
  if [ "$name" = berth ]; then sock=$tmp/berth/berth.sock pid=$berth_pid; else
    sock=$tmp/ctd/containerd.sock pid=$ctd_pid; fi
  [ "$name" = berth ] && curl -s "http://127.0.0.1:$metrics_port/metrics" >"$out.before"
  "$build/bin/kubelet_latency" -r "unix://$sock" --image "$image" -n "$pods" -m "$containers" \
    --server-pid "$pid" --timeout 120 ${POD_NETWORK:+--pod-network} ${SECCOMP:+--seccomp} \
    ${pull_ref:+--pull "$pull_ref"} >"$out" 2>"$out.err" || {
    echo "side_by_side.sh: $name run failed:" >&2
    cat "$out.err" >&2
    return 1
  }
  [ "$name" = berth ] && curl -s "http://127.0.0.1:$metrics_port/metrics" >"$out.after"
  return 0
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="berth containerd"; else order="containerd berth"; fi
  for name in $order; do
    echo "round $r: $name" >&2
    one "$name" "$tmp/$name.$r"
  done
done

python3 - "$tmp" "$rounds" "$pods" "$containers" "${POD_NETWORK:+pod-network}" \
  "${SECCOMP:+seccomp}" <<'PY'
import statistics, sys
tmp, rounds, pods, containers = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
network = "pod-network (CNI bridge)" if len(sys.argv) > 5 and sys.argv[5] else "host-network"
if len(sys.argv) > 6 and sys.argv[6]:
    containers += " RuntimeDefault-seccomp"
runs = {}  # runtime -> list of {measure: (p50, p99, calls)}
foot = {}
for name in ("berth", "containerd"):
    for r in range(1, rounds + 1):
        res = {}
        for line in open(f"{tmp}/{name}.{r}"):
            f = line.split()
            if f and f[0] == "RESULT":
                res[f[1]] = (float(f[2]), float(f[3]), int(f[4]))
            elif f and f[0] == "FOOTPRINT":
                foot.setdefault(name, []).append((int(f[2]), int(f[4]), float(f[6])))
        runs.setdefault(name, []).append(res)
def med(name, measure, i):
    return statistics.median(run[measure][i] for run in runs[name])
def share(name, measure):
    # per run: p50 minus one client round trip (that run's Version p50) per call
    return statistics.median(max(run[measure][0] - run[measure][2] * run["Version"][0], 0.0)
                             for run in runs[name])
print(f"berth vs containerd: {pods} {network} pods x {containers} containers, "
      f"medians of {rounds} alternating rounds (µs)")
print(f"{'measure':22} {'berth p50':>10} {'ctrd p50':>10} {'ratio':>6} {'berth p99':>10} "
      f"{'ctrd p99':>10} {'server share ratio':>19}")
for m in runs["berth"][0]:
    b50, c50 = med("berth", m, 0), med("containerd", m, 0)
    b99, c99 = med("berth", m, 1), med("containerd", m, 1)
    sb, sc = share("berth", m), share("containerd", m)
    ratio = f"{b50 / c50:6.2f}" if c50 > 0 else "     -"
    sratio = f"{sb / sc:19.2f}" if m != "Version" and sc > 0 else " " * 19
    print(f"{m:22} {b50:10.1f} {c50:10.1f} {ratio} {b99:10.1f} {c99:10.1f} {sratio}")
# berthd's server-side time per call: its request histogram over each run, the median of runs.
def scrape(path):
    out = {}
    for line in open(path):
        if line.startswith("berth_cri_request_duration_seconds_sum{") or \
           line.startswith("berth_cri_request_duration_seconds_count{"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out
print("berthd server-side time per call (its request histogram), median of the runs' means:")
for method in ("PodSandboxStatus", "ContainerStatus", "ListContainers", "ListPodSandbox",
               "RunPodSandbox", "StopPodSandbox"):
    means = []
    for r in range(1, rounds + 1):
        b, a = scrape(f"{tmp}/berth.{r}.before"), scrape(f"{tmp}/berth.{r}.after")
        k = f'{{method="{method}"}}'
        n = a.get("berth_cri_request_duration_seconds_count" + k, 0) - \
            b.get("berth_cri_request_duration_seconds_count" + k, 0)
        t = a.get("berth_cri_request_duration_seconds_sum" + k, 0) - \
            b.get("berth_cri_request_duration_seconds_sum" + k, 0)
        if n > 0:
            means.append(t / n * 1e6)
    if means:
        print(f"  {method:18} {statistics.median(means):10.1f} µs")
for name in ("berth", "containerd"):
    if name in foot:
        t, fds, rss = (statistics.median(x[i] for x in foot[name]) for i in range(3))
        print(f"{name}: {t:.0f} threads, {fds:.0f} descriptors, RSS {rss:.1f} MiB "
              f"with every pod running")
PY
