#!/usr/bin/env bash
# Checks a running test environment (tests/env/testenv.sh up DIR) with curl and
# python3. Usage: selftest.sh [DIR]   (default: $BERTH_TEST_ENV_DIR)
# Prints "ok"/"FAIL" per check and a final line "N passed, M failed".
set -euo pipefail

DIR=${1:-${BERTH_TEST_ENV_DIR:-}}
if [ -z "$DIR" ] || [ ! -f "$DIR/env" ]; then
  if [ -z "$DIR" ]; then
    echo "selftest: usage: $0 DIR (or set BERTH_TEST_ENV_DIR)" >&2
  else
    echo "selftest: $DIR/env not found; run tests/env/testenv.sh up $DIR first" >&2
  fi
  echo "0 passed, 1 failed"
  exit 1
fi
# shellcheck disable=SC1091
. "$DIR/env"

T=$(mktemp -d "${TMPDIR:-/tmp}/berth-selftest.XXXXXX")
trap 'rm -rf "$T"' EXIT

ACCEPT_OCI=application/vnd.oci.image.manifest.v1+json
ACCEPT_INDEX=application/vnd.oci.image.index.v1+json
ACCEPT_DOCKER=application/vnd.docker.distribution.manifest.v2+json
ACCEPT_LIST=application/vnd.docker.distribution.manifest.list.v2+json
ACCEPT_ALL="$ACCEPT_OCI, $ACCEPT_INDEX, $ACCEPT_DOCKER, $ACCEPT_LIST"

# Helper for JSON, digests and tar inspection.
cat >"$T/h.py" <<'EOF'
import gzip, hashlib, json, subprocess, sys, tarfile, io

def sha(path):
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()

def plain(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(["zstd", "-dc"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    return data

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "sha":
    print(sha(args[0]))
elif cmd == "diffid":
    print("sha256:" + hashlib.sha256(plain(args[0])).hexdigest())
elif cmd == "get":  # get FILE PYEXPR  (j = parsed JSON)
    j = json.load(open(args[0]))
    v = eval(args[1], {"j": j})
    print(v if isinstance(v, str) else json.dumps(v))
elif cmd == "busybox-tar":
    tf = tarfile.open(fileobj=io.BytesIO(plain(args[0])))
    m = {t.name.rstrip("/"): t for t in tf.getmembers()}
    bb = m.get("bin/busybox")
    assert bb is not None and bb.isreg(), "bin/busybox missing or not a regular file"
    assert bb.mode & 0o111, "bin/busybox not executable"
    assert bb.size > 100000, f"bin/busybox too small ({bb.size})"
    sh = m.get("bin/sh")
    assert sh is not None and sh.islnk(), "bin/sh missing or not a hard link"
    assert sh.linkname == "bin/busybox", f"bin/sh links to {sh.linkname!r}"
    links = [t for t in tf.getmembers() if t.issym()]
    assert not links, f"unexpected symlinks: {[t.name for t in links][:5]}"
    names = [t.name for t in tf.getmembers()]
    assert names.index("bin/busybox") < names.index("bin/sh"), "hard link before its target"
    tmp = m.get("tmp")
    assert tmp is not None and tmp.isdir() and tmp.mode == 0o1777, "tmp not a 1777 dir"
    passwd = tf.extractfile(m["etc/passwd"]).read().decode()
    assert "berth:x:1002:1002:" in passwd and ":/home/berth:" in passwd, "passwd lacks berth"
    assert "www-data:x:33:33:" in passwd, "passwd lacks www-data"
    group = tf.extractfile(m["etc/group"]).read().decode()
    assert "users:x:100:berth" in group, "group lacks users with berth"
    nlinks = sum(1 for t in tf.getmembers() if t.islnk())
    print(f"{nlinks} applet hard links")
else:
    sys.exit(f"unknown helper command {cmd}")
EOF
py() { python3 "$T/h.py" "$@"; }

PASSED=0
FAILED=0
check() {  # check NAME FUNCTION [ARGS...]
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    PASSED=$((PASSED + 1))
    echo "ok   $name${out:+ ($out)}"
  else
    FAILED=$((FAILED + 1))
    echo "FAIL $name: ${out:-failed}"
  fi
}

REG=$BERTH_TEST_REGISTRY
AREG=$BERTH_TEST_AUTH_REGISTRY
CRED="$BERTH_TEST_AUTH_USER:$BERTH_TEST_AUTH_PASSWORD"
repo_of() { local r=${1#*/}; echo "${r%:*}"; }  # 127.0.0.1:P/a/b:tag -> a/b
tag_of() { echo "${1##*:}"; }

# fetch URL OUT [curl args...] -> prints HTTP status, headers in OUT.h
fetch() {
  local url=$1 out=$2
  shift 2
  curl -sS --max-time 30 -o "$out" -D "$out.h" -w '%{http_code}' "$@" "$url"
}
header() { grep -i "^$2:" "$1.h" | head -n1 | cut -d: -f2- | tr -d ' \r'; }

expect_eq() { [ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }; }

c_ping() { expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")" 200; }

BB_REPO=$(repo_of "$BERTH_TEST_IMAGE_BUSYBOX")
BB_TAG=$(tag_of "$BERTH_TEST_IMAGE_BUSYBOX")

c_manifest_tag() {
  local st
  st=$(fetch "http://$REG/v2/$BB_REPO/manifests/$BB_TAG" "$T/m" -H "Accept: $ACCEPT_ALL")
  expect_eq "$st" 200 || return 1
  expect_eq "$(header "$T/m" Content-Type)" "$ACCEPT_OCI" || return 1
  expect_eq "$(header "$T/m" Docker-Content-Digest)" "$BERTH_TEST_IMAGE_BUSYBOX_DIGEST" || return 1
  expect_eq "$(py sha "$T/m")" "$BERTH_TEST_IMAGE_BUSYBOX_DIGEST"
}
c_manifest_digest() {
  local st
  st=$(fetch "http://$REG/v2/$BB_REPO/manifests/$BERTH_TEST_IMAGE_BUSYBOX_DIGEST" "$T/md" \
    -H "Accept: $ACCEPT_OCI")
  expect_eq "$st" 200 || return 1
  cmp -s "$T/m" "$T/md" || { echo "body differs from the by-tag manifest"; return 1; }
}
c_latest() {
  fetch "http://$REG/v2/$BB_REPO/manifests/latest" "$T/ml" -H "Accept: $ACCEPT_OCI" >/dev/null
  expect_eq "$(py sha "$T/ml")" "$BERTH_TEST_IMAGE_BUSYBOX_DIGEST"
}
c_config() {
  local d st
  d=$(py get "$T/m" 'j["config"]["digest"]')
  expect_eq "$d" "$BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST" || return 1
  st=$(fetch "http://$REG/v2/$BB_REPO/blobs/$d" "$T/c")
  expect_eq "$st" 200 || return 1
  expect_eq "$(py sha "$T/c")" "$d" || return 1
  expect_eq "$(py get "$T/c" '[j["architecture"], j["os"], j["config"]["Cmd"]]')" \
    '["amd64", "linux", ["sh"]]' || return 1
  expect_eq "$(py get "$T/c" 'j["config"]["Env"][0]')" \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}
c_layer() {
  local d st
  d=$(py get "$T/m" 'j["layers"][0]["digest"]')
  st=$(fetch "http://$REG/v2/$BB_REPO/blobs/$d" "$T/l")
  expect_eq "$st" 200 || return 1
  expect_eq "$(py sha "$T/l")" "$d" || return 1
  expect_eq "$(py diffid "$T/l")" "$(py get "$T/c" 'j["rootfs"]["diff_ids"][0]')"
}
c_layer_tar() { py busybox-tar "$T/l"; }

c_user() {  # c_user ENVKEY WANT_USER
  local ref=${!1} st
  st=$(fetch "http://$REG/v2/$(repo_of "$ref")/manifests/$(tag_of "$ref")" "$T/u" \
    -H "Accept: $ACCEPT_OCI")
  expect_eq "$st" 200 || return 1
  local dg=${1}_DIGEST
  expect_eq "$(py sha "$T/u")" "${!dg}" || return 1
  fetch "http://$REG/v2/$(repo_of "$ref")/blobs/$(py get "$T/u" 'j["config"]["digest"]')" \
    "$T/uc" >/dev/null
  expect_eq "$(py get "$T/uc" 'j["config"]["User"]')" "$2"
}

c_index() {
  local st
  st=$(fetch "http://$REG/v2/$BB_REPO/manifests/$(tag_of "$BERTH_TEST_IMAGE_BUSYBOX_INDEX")" \
    "$T/i" -H "Accept: $ACCEPT_ALL")
  expect_eq "$st" 200 || return 1
  expect_eq "$(header "$T/i" Content-Type)" "$ACCEPT_INDEX" || return 1
  expect_eq "$(py sha "$T/i")" "$BERTH_TEST_IMAGE_BUSYBOX_INDEX_DIGEST" || return 1
  expect_eq "$(py get "$T/i" '[m["platform"]["architecture"] for m in j["manifests"]]')" \
    '["arm64", "amd64"]' || return 1
  expect_eq "$(py get "$T/i" '[m["digest"] for m in j["manifests"] if m["platform"]["architecture"] == "amd64"][0]')" \
    "$BERTH_TEST_IMAGE_BUSYBOX_INDEX_MANIFEST_DIGEST"
}
c_docker() {
  fetch "http://$REG/v2/$BB_REPO/manifests/$(tag_of "$BERTH_TEST_IMAGE_BUSYBOX_DOCKER")" \
    "$T/dk" -H "Accept: $ACCEPT_DOCKER" >/dev/null
  expect_eq "$(header "$T/dk" Content-Type)" "$ACCEPT_DOCKER" || return 1
  expect_eq "$(py sha "$T/dk")" "$BERTH_TEST_IMAGE_BUSYBOX_DOCKER_DIGEST"
}
c_docker_list() {
  fetch "http://$REG/v2/$BB_REPO/manifests/$(tag_of "$BERTH_TEST_IMAGE_BUSYBOX_DOCKER_LIST")" \
    "$T/dl" -H "Accept: $ACCEPT_LIST, $ACCEPT_DOCKER" >/dev/null
  expect_eq "$(header "$T/dl" Content-Type)" "$ACCEPT_LIST" || return 1
  expect_eq "$(py sha "$T/dl")" "$BERTH_TEST_IMAGE_BUSYBOX_DOCKER_LIST_DIGEST"
}
c_zstd() {
  local d
  fetch "http://$REG/v2/$BB_REPO/manifests/$(tag_of "$BERTH_TEST_IMAGE_BUSYBOX_ZSTD")" \
    "$T/z" -H "Accept: $ACCEPT_OCI" >/dev/null
  expect_eq "$(py get "$T/z" 'j["layers"][0]["mediaType"]')" \
    application/vnd.oci.image.layer.v1.tar+zstd || return 1
  d=$(py get "$T/z" 'j["layers"][0]["digest"]')
  fetch "http://$REG/v2/$BB_REPO/blobs/$d" "$T/zl" >/dev/null
  expect_eq "$(py sha "$T/zl")" "$d" || return 1
  expect_eq "$(py diffid "$T/zl")" "$(py get "$T/c" 'j["rootfs"]["diff_ids"][0]')"
}

c_auth_anon() {
  local st
  st=$(fetch "http://$AREG/v2/" "$T/a0")
  expect_eq "$st" 401 || return 1
  header "$T/a0" WWW-Authenticate | grep -qi '^basic' || { echo "no Basic challenge"; return 1; }
  st=$(fetch "http://$AREG/v2/$BB_REPO/manifests/$BB_TAG" "$T/a1" -H "Accept: $ACCEPT_OCI")
  expect_eq "$st" 401
}
c_auth_wrong() {
  expect_eq "$(fetch "http://$AREG/v2/" "$T/a2" -u "$BERTH_TEST_AUTH_USER:wrong")" 401
}
c_auth_ok() {
  local st
  expect_eq "$(fetch "http://$AREG/v2/" "$T/a3" -u "$CRED")" 200 || return 1
  st=$(fetch "http://$AREG/v2/$(repo_of "$BERTH_TEST_AUTH_IMAGE_BUSYBOX")/manifests/$(tag_of "$BERTH_TEST_AUTH_IMAGE_BUSYBOX")" \
    "$T/a4" -u "$CRED" -H "Accept: $ACCEPT_OCI")
  expect_eq "$st" 200 || return 1
  expect_eq "$(py sha "$T/a4")" "$BERTH_TEST_IMAGE_BUSYBOX_DIGEST"
}

check "registry answers GET /v2/" c_ping
check "busybox manifest by tag" c_manifest_tag
check "busybox manifest by digest" c_manifest_digest
check "busybox:latest is the same manifest" c_latest
check "busybox config blob" c_config
check "busybox layer blob and diff_id" c_layer
check "busybox layer contents" c_layer_tar
check "user image uid" c_user BERTH_TEST_IMAGE_USER_UID 1002
check "user image uid:group" c_user BERTH_TEST_IMAGE_USER_UIDGROUP 1003:users
check "user image name" c_user BERTH_TEST_IMAGE_USER_NAME www-data
check "user image name:group" c_user BERTH_TEST_IMAGE_USER_NAMEGROUP www-data:www-data
check "OCI index with arm64 decoy" c_index
check "Docker schema2 manifest" c_docker
check "Docker manifest list" c_docker_list
check "zstd layer" c_zstd
check "auth registry refuses anonymous access" c_auth_anon
check "auth registry refuses a wrong password" c_auth_wrong
check "auth registry accepts the credentials" c_auth_ok

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
