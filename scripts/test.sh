#!/usr/bin/env bash
# Sets up everything and runs berth's whole test suite (unit + integration with real berthd,
# runc, and a registry on loopback). Run as root on Debian 12. Exits non-zero on any failure.
# Usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -L unit
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root (integration tests start berthd, runc and a registry)" >&2
  exit 1
fi
"$here/scripts/install-deps.sh" all
"$here/scripts/build.sh" "$here/build" -DBERTH_BUILD_TESTS=ON -DBERTH_BUILD_BENCH=ON
cd "$here/build"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"
