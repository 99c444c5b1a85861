#!/usr/bin/env bash
# Configures and builds berth. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Environment: BUILD_TYPE (Release|Debug, default Release), BERTH_SANITIZE=ON for ASan+UBSan.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$here/build}
shift || true
cmake -S "$here" -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DBERTH_SANITIZE="${BERTH_SANITIZE:-OFF}" "$@"
cmake --build "$build_dir" -j "$(nproc)"
