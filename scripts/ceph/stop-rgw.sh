#!/usr/bin/env bash
# Stops a cluster started by start-rgw.sh and removes its directory. Order: radosgw, OSD, monitor
# (an OSD or radosgw whose monitor is gone waits for it instead of exiting).
# Usage: scripts/ceph/stop-rgw.sh DIR [--keep]
set -uo pipefail
DIR="$1"
stop_daemon() {
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile" 2>/dev/null)" || return 0
  [ -n "$pid" ] || return 0
  kill -CONT "$pid" 2>/dev/null # a test may have paused it
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null
}
stop_daemon "$DIR/run/client.rgw.a.pid"
for pidfile in "$DIR"/run/osd.*.pid; do stop_daemon "$pidfile"; done
stop_daemon "$DIR/run/mon.a.pid"
[ "${2:-}" = "--keep" ] || rm -rf "$DIR"
