#!/usr/bin/env bash
# Pushes the pull benchmarks' image to REGISTRY and prints its reference: four 25 MB layers of
# random bytes, gzip'd (gzip cannot shrink them, so MB/s counts real bytes), as
# berth-bench/big:1. Usage: bench/push_big_image.sh REGISTRY WORKDIR (WORKDIR: scratch space)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
registry=$1
work=$2
mkdir -p "$work/data"
layers=""
for i in 1 2 3 4; do
  head -c $((25 * 1024 * 1024)) /dev/urandom >"$work/data/blob$i"
  layers+="{\"compression\":\"gzip\",\"entries\":[{\"type\":\"file\",\"path\":\"/data/blob$i\",\"source\":\"$work/data/blob$i\"}]},"
done
cat >"$work/big.json" <<SPEC
{"repo":"berth-bench/big","tags":["1"],"layers":[${layers%,}],"config":{"Cmd":["/bin/true"]}}
SPEC
push=$(python3 "$here/tests/env/mkimage.py" push "$work/big.json" --registry "$registry")
rm -rf "$work/data"
python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ref"])' "$push"
