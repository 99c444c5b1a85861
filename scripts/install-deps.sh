#!/usr/bin/env bash
# Installs every Debian package berth needs to build, run and test. Safe to re-run.
# Usage: scripts/install-deps.sh [build|runtime|test|all|bench]   (default: all)
# `bench` is containerd, the side-by-side reference of bench/side_by_side.sh (not part of all).
set -euo pipefail

what=${1:-all}

build_pkgs=(
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libgrpc-dev
  libabsl-dev nlohmann-json3-dev libtomlplusplus-dev libsqlite3-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev libzstd-dev zlib1g-dev
  libspdlog-dev libfmt-dev libcli11-dev libboost-dev libboost-system-dev
  libgtest-dev libgmock-dev libbenchmark-dev libseccomp-dev libyaml-cpp-dev
)
runtime_pkgs=(runc crun containernetworking-plugins iproute2 iptables util-linux libseccomp2 criu)
# golang-go and docker/spdystream build an upstream SPDY client for the streaming interop test.
test_pkgs=(docker-registry busybox-static apache2-utils curl ca-certificates python3 zstd openssl
           golang-go golang-github-docker-spdystream-dev)

bench_pkgs=(containerd)

pkgs=()
case "$what" in
  bench) pkgs=("${bench_pkgs[@]}") ;;
  build) pkgs=("${build_pkgs[@]}") ;;
  runtime) pkgs=("${runtime_pkgs[@]}") ;;
  test) pkgs=("${test_pkgs[@]}") ;;
  all) pkgs=("${build_pkgs[@]}" "${runtime_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|runtime|test|all|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
