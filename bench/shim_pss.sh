#!/usr/bin/env bash
# Measures the memory (PSS, from /proc/<pid>/smaps_rollup) of berth-shim — idle, with one
# running berth-pause container whose CRI log the shim writes, and after an exec in it (timed
# out and killed) — and of berth-pause itself. Builds nothing.
#
#   bench/shim_pss.sh [BUILD_DIR]      (default ./build; needs root, runc and python3)
#   SHIMS=N bench/shim_pss.sh ...      also reports the mean PSS of N idle shims side by side
set -euo pipefail

build=${1:-./build}
shim=$(realpath "$build/bin/berth-shim")
pause=$(realpath "$build/bin/berth-pause")
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
shims=${SHIMS:-0}
[[ -x $shim && -x $pause ]] || { echo "no berth-shim/berth-pause in $build/bin" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "needs root (runc)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-shim-pss.XXXXXX)
cid="pss-$$"
declare -a pods=()

pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

# request DIR JSON: sends one framed request to the shim in DIR and prints the reply.
request() {
  python3 - "$1" "$2" <<'PY'
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1] + "/shim.sock")
body = json.dumps(json.loads(sys.argv[2])).encode()
s.sendall(struct.pack(">I", len(body)) + body)
def read(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise SystemExit("shim closed the connection")
        data += chunk
    return data
(n,) = struct.unpack(">I", read(4))
print(read(n).decode())
PY
}

start_shim() {  # start_shim NAME → sets $shim_pid (not in a subshell: cleanup needs $pods)
  local dir=$tmp/pods/$1
  pods+=("$dir")
  mkdir -p "$dir"
  "$shim" --id "$1" --dir "$dir" --runtime "$runc" --runtime-root "$tmp/runc" --log-level warn
  for _ in $(seq 200); do [[ -S $dir/shim.sock ]] && break; sleep 0.02; done
  [[ -S $dir/shim.sock ]] || { echo "shim $1 did not start; log:" >&2; cat "$dir/shim.log" >&2; exit 1; }
  shim_pid=$(cat "$dir/shim.pid")
}

cleanup() {
  "$runc" --root "$tmp/runc" delete --force "$cid" >/dev/null 2>&1 || true
  for dir in "${pods[@]}"; do
    if [[ -S $dir/shim.sock ]]; then
      request "$dir" '{"v":1,"id":99,"op":"shutdown"}' >/dev/null 2>&1 || true
    fi
  done
  for c in /sys/fs/cgroup/*/berth-bench; do rmdir "$c/$cid" "$c" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

start_shim bench
pid=$shim_pid
sleep 0.3
echo "berth-shim PSS: $(pss "$pid") kB (idle)"

# One pause container: rootfs holding only the static berth-pause.
bundle=$tmp/bundle
mkdir -p "$bundle/rootfs/proc" "$bundle/rootfs/dev"
cp "$pause" "$bundle/rootfs/pause"
cat >"$bundle/config.json" <<JSON
{"ociVersion": "1.0.2",
 "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/pause"],
             "env": ["PATH=/"], "cwd": "/", "noNewPrivileges": true},
 "root": {"path": "rootfs", "readonly": true},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                          {"type": "mount"}, {"type": "network"}],
           "cgroupsPath": "/berth-bench/$cid"}}
JSON
reply=$(request "$tmp/pods/bench" "{\"v\":1,\"id\":1,\"op\":\"create\",\"container_id\":\"$cid\",\"bundle\":\"$bundle\",\"log_path\":\"$bundle/ctr.log\"}")
pause_pid=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["pid"]) if r["ok"] else sys.exit("create failed: " + r["message"])' "$reply")
request "$tmp/pods/bench" "{\"v\":1,\"id\":2,\"op\":\"start\",\"container_id\":\"$cid\"}" >/dev/null
sleep 0.3
echo "berth-shim PSS: $(pss "$pid") kB (one running pause container)"
echo "berth-pause PSS: $(pss "$pause_pid") kB"
request "$tmp/pods/bench" "{\"v\":1,\"id\":3,\"op\":\"exec\",\"container_id\":\"$cid\",\"exec_id\":\"e1\",\"args\":[\"/pause\"],\"timeout_ms\":200}" >/dev/null
sleep 0.3
echo "berth-shim PSS: $(pss "$pid") kB (after an exec in it)"
request "$tmp/pods/bench" '{"v":1,"id":4,"op":"shutdown"}' >/dev/null

if (( shims > 0 )); then
  declare -a pids=()
  for i in $(seq "$shims"); do start_shim "idle-$i"; pids+=("$shim_pid"); done
  sleep 0.3
  total=0
  for p in "${pids[@]}"; do total=$((total + $(pss "$p"))); done
  echo "berth-shim PSS: $((total / shims)) kB mean over $shims idle shims"
fi
