#!/usr/bin/env bash
# Test environment for berth integration tests: two docker-registry instances on
# loopback (one plain, one with htpasswd basic auth) and small test images built
# offline by mkimage.py.
#
#   testenv.sh up DIR     start registries, push images, write DIR/env + DIR/env.json
#   testenv.sh down DIR   stop the registries (by pid) and remove DIR
#
# Progress goes to stderr; `up` prints the env file to stdout when done.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
AUTH_USER=berth
AUTH_PASSWORD=berth-pass
READY_TIMEOUT=20   # seconds to wait for a registry to answer
STOP_TIMEOUT=10    # seconds to wait after SIGTERM before SIGKILL
MARKER=.berth-testenv

log() { echo "testenv: $*" >&2; }

usage() {
  echo "usage: $0 up|down DIR" >&2
  exit 2
}

# True if the pid file names a live docker-registry process (guards pid reuse).
alive() {
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = docker-registry ] || return 1
  # A zombie (exited, not yet reaped) counts as dead.
  local stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# True if the registries recorded in DIR/env are alive and answering.
env_healthy() {
  local reg areg
  [ -f "$DIR/env" ] && alive "$DIR/registry.pid" && alive "$DIR/registry-auth.pid" || return 1
  reg=$(sed -n 's/^BERTH_TEST_REGISTRY=//p' "$DIR/env")
  areg=$(sed -n 's/^BERTH_TEST_AUTH_REGISTRY=//p' "$DIR/env")
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$reg/v2/")" = 200 ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$areg/v2/")" = 401 ]
}

# Stop the registries named by pid files: TERM all, bounded wait, then KILL.
stop_pidfiles() {
  local f pid i pids=() files=()
  for f in "$@"; do
    if alive "$f"; then
      pid=$(cat "$f")
      log "stopping $(basename "$f" .pid) (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      files+=("$f")
    fi
  done
  any_alive() {
    for f in "${files[@]}"; do alive "$f" && return 0; done
    return 1
  }
  if [ ${#pids[@]} -gt 0 ]; then
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      any_alive || break
      sleep 0.1
    done
    for f in "${files[@]}"; do
      if alive "$f"; then
        log "pid $(cat "$f") ignored SIGTERM; sending SIGKILL"
        kill -KILL "$(cat "$f")" 2>/dev/null || true
      fi
    done
    for ((i = 0; i < 50; i++)); do
      any_alive || break
      sleep 0.1
    done
    # Give the reaper (pid 1) a moment so the processes are gone on return.
    for pid in "${pids[@]}"; do
      for ((i = 0; i < 30; i++)); do
        [ -e "/proc/$pid" ] || break
        sleep 0.1
      done
    done
  fi
  rm -f "$@"
}

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

show_logs() {
  local f
  for f in "$DIR/registry.log" "$DIR/registry-auth.log"; do
    if [ -s "$f" ]; then
      echo "---- tail of $f ----" >&2
      tail -n 30 "$f" >&2
    fi
  done
}

# write_config NAME PORT [auth]
write_config() {
  local name=$1 port=$2 auth=${3:-}
  {
    cat <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: "$DIR/$name"
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: berth-test-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
    if [ -n "$auth" ]; then
      cat <<EOF
auth:
  htpasswd:
    realm: berth-test
    path: "$DIR/htpasswd"
EOF
    fi
  } >"$DIR/$name.yml"
}

# start_registry NAME EXPECTED_ANON_STATUS [auth]; sets PORT.
start_registry() {
  local name=$1 expect=$2 auth=${3:-} attempt pid status i loglines
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    write_config "$name" "$PORT" "$auth"
    mkdir -p "$DIR/$name"
    rm -f "$DIR/$name.pid"
    touch "$DIR/$name.log"
    loglines=$(wc -l <"$DIR/$name.log")
    # The inner bash records its own pid, then becomes the registry (exec), in a
    # new session so it outlives this script; no fd of ours stays open in it.
    # shellcheck disable=SC2016  # $$ and $1 expand in the inner shell
    setsid bash -c 'echo $$ >"$1"; exec docker-registry serve "$2"' _ \
      "$DIR/$name.pid" "$DIR/$name.yml" </dev/null >>"$DIR/$name.log" 2>&1 &
    for ((i = 0; i < 50; i++)); do
      [ -s "$DIR/$name.pid" ] && break
      sleep 0.05
    done
    pid=$(cat "$DIR/$name.pid" 2>/dev/null || true)
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
      if ! alive "$DIR/$name.pid"; then
        break
      fi
      status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        "http://127.0.0.1:$PORT/v2/" || true)
      if [ "$status" = "$expect" ]; then
        log "$name listening on 127.0.0.1:$PORT (pid $pid)"
        return 0
      fi
      sleep 0.1
    done
    if alive "$DIR/$name.pid"; then
      log "$name (pid $pid) did not answer GET /v2/ with $expect within ${READY_TIMEOUT}s"
      stop_pidfiles "$DIR/$name.pid"
      return 1
    fi
    if tail -n "+$((loglines + 1))" "$DIR/$name.log" | grep -q 'address already in use'; then
      log "port $PORT taken, retrying ($attempt)"
      continue
    fi
    log "$name exited during startup"
    return 1
  done
  log "$name: no free port after 5 attempts"
  return 1
}

cleanup_files() {
  rm -rf "$DIR/registry" "$DIR/registry-auth" "$DIR"/registry*.pid "$DIR"/registry*.log \
    "$DIR"/registry*.yml "$DIR/htpasswd" "$DIR/env" "$DIR/env.json" "$DIR/env.tmp" \
    "$DIR/env.json.tmp" "$DIR/images.json"
}

UP_OK=0
on_up_exit() {
  if [ "$UP_OK" != 1 ]; then
    log "up FAILED"
    show_logs
    stop_pidfiles "$DIR/registry.pid" "$DIR/registry-auth.pid"
    log "logs kept in $DIR; run '$0 down $DIR' to remove it"
  fi
}

cmd_up() {
  local t0 deps reg areg
  t0=$(date +%s.%N)
  deps="$HERE/../../scripts/install-deps.sh"
  if [ -x "$deps" ] || [ -f "$deps" ]; then
    bash "$deps" test >&2
  fi
  for tool in docker-registry htpasswd curl python3; do
    command -v "$tool" >/dev/null || { log "missing tool: $tool"; exit 1; }
  done

  if env_healthy; then
    log "already up in $DIR"
    cat "$DIR/env"
    exit 0
  fi
  if [ -d "$DIR" ]; then
    # Leftovers of a failed or half-stopped run: stop what is ours, start fresh.
    stop_pidfiles "$DIR/registry.pid" "$DIR/registry-auth.pid"
    cleanup_files
  fi
  mkdir -p "$DIR"
  touch "$DIR/$MARKER"

  trap on_up_exit EXIT
  htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$DIR/htpasswd" 2>/dev/null

  start_registry registry 200
  reg=127.0.0.1:$PORT
  start_registry registry-auth 401 auth
  areg=127.0.0.1:$PORT
  local st
  st=$(curl -s -o /dev/null -w '%{http_code}' -u "$AUTH_USER:$AUTH_PASSWORD" "http://$areg/v2/")
  if [ "$st" != 200 ]; then
    log "auth registry rejected the test credentials (HTTP $st)"
    exit 1
  fi

  log "building and pushing test images"
  python3 "$HERE/mkimage.py" testenv --registry "$reg" --auth-registry "$areg" \
    --username "$AUTH_USER" --password "$AUTH_PASSWORD" >"$DIR/images.json"

  # DIR/env (shell) and DIR/env.json (flat JSON object), written atomically.
  python3 - "$DIR" "$reg" "$areg" "$AUTH_USER" "$AUTH_PASSWORD" <<'EOF'
import json, os, shlex, sys
d, reg, areg, user, pw = sys.argv[1:6]
env = {
    "BERTH_TEST_ENV_DIR": d,
    "BERTH_TEST_REGISTRY": reg,
    "BERTH_TEST_AUTH_REGISTRY": areg,
    "BERTH_TEST_AUTH_USER": user,
    "BERTH_TEST_AUTH_PASSWORD": pw,
}
with open(os.path.join(d, "images.json")) as f:
    images = json.load(f)
for k in sorted(images):
    env[k] = images[k]
with open(os.path.join(d, "env.json.tmp"), "w") as f:
    json.dump(env, f, indent=2)
    f.write("\n")
with open(os.path.join(d, "env.tmp"), "w") as f:
    for k, v in env.items():
        f.write(f"{k}={shlex.quote(v)}\n")
os.rename(os.path.join(d, "env.json.tmp"), os.path.join(d, "env.json"))
os.rename(os.path.join(d, "env.tmp"), os.path.join(d, "env"))
EOF
  rm -f "$DIR/images.json"
  UP_OK=1
  log "up in $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")s; env in $DIR/env"
  cat "$DIR/env"
}

cmd_down() {
  if [ ! -d "$DIR" ]; then
    log "$DIR does not exist; nothing to do"
    return 0
  fi
  stop_pidfiles "$DIR/registry.pid" "$DIR/registry-auth.pid"
  if [ -e "$DIR/$MARKER" ]; then
    rm -rf "$DIR"
    log "removed $DIR"
  else
    cleanup_files
    log "$DIR has no $MARKER marker; removed only the test environment's files"
  fi
}

[ $# -eq 2 ] || usage
DIR=$2
if [ -z "$DIR" ] || [ "$DIR" = / ]; then usage; fi
DIR=$(realpath -m "$DIR")
case "$1" in
  up) cmd_up ;;
  down) cmd_down ;;
  *) usage ;;
esac
