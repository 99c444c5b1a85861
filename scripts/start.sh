#!/usr/bin/env bash
# Quick start: installs what berth needs, builds and installs berthd and berthctl into
# /usr/local/bin, and starts berthd with its built-in defaults (socket /run/berth/berth.sock,
# root /var/lib/berth, config /etc/berth/config.toml if present). Run as root on Debian 12.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "start.sh: run as root" >&2
  exit 1
fi
"$here/scripts/install-deps.sh" build
"$here/scripts/install-deps.sh" runtime
"$here/scripts/build.sh" "$here/build" -DBERTH_BUILD_TESTS=OFF -DBERTH_BUILD_BENCH=OFF
cmake --install "$here/build" --prefix /usr/local

socket=/run/berth/berth.sock
if /usr/local/bin/berthctl -t 2 -r "unix://$socket" version >/dev/null 2>&1; then
  echo "berthd is already serving on $socket; restart it to run the new build"
  exit 0
fi

if [ -d /run/systemd/system ]; then
  install -m 0644 "$here/contrib/berthd.service" /etc/systemd/system/berthd.service
  systemctl daemon-reload
  systemctl enable --now berthd.service
else
  mkdir -p /var/log/berth
  chmod 0700 /var/log/berth
  setsid /usr/local/bin/berthd >>/var/log/berth/berthd.log 2>&1 </dev/null &
fi

for _ in $(seq 1 100); do
  if /usr/local/bin/berthctl -t 2 -r "unix://$socket" version >/dev/null 2>&1; then
    /usr/local/bin/berthctl -r "unix://$socket" version
    echo "berthd is serving on $socket (pid $(cat /var/lib/berth/berthd.lock))."
    [ -d /run/systemd/system ] || echo "Logs: /var/log/berth/berthd.log. Stop: kill \$(cat /var/lib/berth/berthd.lock)"
    exit 0
  fi
  sleep 0.1
done
echo "start.sh: berthd did not come up; see /var/log/berth/berthd.log" >&2
tail -n 20 /var/log/berth/berthd.log >&2 || true
exit 1
