#!/usr/bin/env bash
# The installed layout works: `cmake --install` into a temporary prefix, then the installed
# berthd (which needs berth-shim and berth-pause beside it) serves, and runs and removes a
# host-network pod through the installed berthctl. Usage: install_smoke.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d /tmp/berth-install-XXXXXX)
pid=
ctl() { "$tmp/prefix/bin/berthctl" -r "unix://$tmp/state/berth.sock" "$@"; }
cleanup() {
  if [ -n "$pid" ]; then
    for p in $(ctl pods -q 2>/dev/null); do ctl rmp "$p" >/dev/null 2>&1 || true; done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  for c in /sys/fs/cgroup/*/berth-install-$$; do rmdir "$c" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for b in berthd berthctl berth-shim berth-pause; do
  [ -x "$tmp/prefix/bin/$b" ] || { echo "FAIL: $b not installed"; exit 1; }
done
cat >"$tmp/config.toml" <<CFG
root = "$tmp/root"
state = "$tmp/state"
cgroup_parent = "/berth-install-$$"
[grpc]
address = "$tmp/state/berth.sock"
CFG
"$tmp/prefix/bin/berthd" --config "$tmp/config.toml" 2>"$tmp/berthd.log" &
pid=$!
for _ in $(seq 1 200); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done
version=$(ctl version) || true
echo "$version" | grep -q 'RuntimeName: *berth' || { echo "FAIL: no version"; cat "$tmp/berthd.log"; exit 1; }
cat >"$tmp/pod.json" <<POD
{"metadata":{"name":"smoke","namespace":"default","uid":"smoke-$$","attempt":0},
 "linux":{"security_context":{"namespace_options":{"network":2}}}}
POD
id=$(ctl runp "$tmp/pod.json") || { echo "FAIL: runp"; cat "$tmp/berthd.log"; exit 1; }
info=$(ctl inspectp "$id")
echo "$info" | grep -q '"processStatus": "running"' || { echo "FAIL: pod not running: $info"; exit 1; }
ctl rmp "$id" >/dev/null
echo "1 passed, 0 failed"
