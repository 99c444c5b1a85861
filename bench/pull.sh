#!/usr/bin/env bash
# Pull throughput: pushes a 4-layer image of ~100 MB (incompressible data) to a registry on
# loopback (tests/env), then pulls it into a fresh temporary berthd RUNS times, removing it in
# between, and prints MB/s per run and the median. Usage: bench/pull.sh [RUNS]   (default 5)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
runs=${1:-5}
tmp=$(mktemp -d /tmp/berth-bench-pull-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  "$here/tests/env/testenv.sh" down "$tmp/env" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$here/tests/env/testenv.sh" up "$tmp/env" >/dev/null 2>&1
registry=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["BERTH_TEST_REGISTRY"])' "$tmp/env/env.json")

ref=$("$here/bench/push_big_image.sh" "$registry" "$tmp")

cat >"$tmp/config.toml" <<CFG
root = "$tmp/root"
state = "$tmp/state"
[grpc]
address = "$tmp/state/berth.sock"
[log]
level = "warn"
[image.registries."$registry"]
plain_http = true
CFG
"$build/bin/berthd" --config "$tmp/config.toml" 2>"$tmp/berthd.log" &
pid=$!
ctl() { "$build/bin/berthctl" -r "unix://$tmp/state/berth.sock" "$@"; }
for _ in $(seq 1 200); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done

echo "image $ref, 4 layers, $((4 * 25)) MiB of layer data, $runs runs"
rates=()
for r in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  ctl pull "$ref" >/dev/null
  end=$(date +%s.%N)
  bytes=$(ctl images -o json | python3 -c 'import json,sys; print(sum(int(i["size"]) for i in json.load(sys.stdin)["images"]))')
  rate=$(python3 -c "print(f'{$bytes / 1e6 / ($end - $start):.1f}')")
  printf 'run %d: %.2f s, %s MB, %s MB/s\n' "$r" "$(python3 -c "print($end - $start)")" \
    "$(python3 -c "print(f'{$bytes / 1e6:.1f}')")" "$rate"
  rates+=("$rate")
  ctl rmi "$ref" >/dev/null
done
printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print "median MB/s: " a[int((NR+1)/2)]}'
