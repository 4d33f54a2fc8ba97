#!/usr/bin/env bash
# Starts a throwaway one-node Ceph cluster with a RADOS Gateway (S3) under a temp directory, for
# tests and benchmarks: one monitor, one memstore OSD, no mgr, no auth, pool size 1, radosgw's
# beast frontend. Everything binds to 127.0.0.1. Installs Debian's ceph packages when missing.
#
# Usage: scripts/ceph/start-rgw.sh [DIR]
#   DIR defaults to a new mktemp directory. On success prints shell assignments on stdout:
#   RGW_DIR, RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY (also written to DIR/env).
#   Stop with scripts/ceph/stop-rgw.sh DIR.
# Env: RGW_START_TIMEOUT (seconds per wait, default 120), RGW_MEMSTORE_BYTES (default 3 GiB).
set -euo pipefail

DIR="${1:-$(mktemp -d "${TMPDIR:-/tmp}/hsmedia-rgw.XXXXXX")}"
TIMEOUT="${RGW_START_TIMEOUT:-120}"
MEMSTORE_BYTES="${RGW_MEMSTORE_BYTES:-3221225472}"
log() { echo "start-rgw: $*" >&2; }

install_packages() {
  local missing=()
  command -v ceph-mon >/dev/null || missing+=(ceph-mon)
  command -v ceph-osd >/dev/null || missing+=(ceph-osd)
  command -v radosgw >/dev/null || missing+=(radosgw)
  command -v ceph >/dev/null || missing+=(ceph-common)
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]} (Debian packages, about a minute)"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo -n)
  # Other jobs on the machine may hold the dpkg lock: wait for it rather than fail.
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y \
      --no-install-recommends ceph-mon ceph-osd radosgw ceph-common >&2; then
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 update >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y \
      --no-install-recommends ceph-mon ceph-osd radosgw ceph-common >&2
  fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Waits until "$@" succeeds, polling; fails after TIMEOUT seconds with the daemon logs.
wait_for() {
  local what="$1"; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out waiting for $what"; tail -n 30 "$DIR"/log/*.log >&2 || true; return 1
    fi
    sleep 0.1
  done
}

port_accepts() { node -e 'const c=require("net").connect(+process.argv[1],"127.0.0.1");c.on("connect",()=>process.exit(0));c.on("error",()=>process.exit(1))' "$1"; }

install_packages
mkdir -p "$DIR"/{run,log,mon,osd,rgw}
MON_PORT="$(free_port)"
RGW_PORT="$(free_port)"
FSID="$(cat /proc/sys/kernel/random/uuid)"
CONF="$DIR/ceph.conf"
cat > "$CONF" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# radosgw never finishes connecting to the monitor without it.
ms mon client mode = crc
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# Pool creation (radosgw makes several at start) waits on paxos: propose quickly.
paxos propose interval = 0.05
mon osd full ratio = 0.99
mon osd nearfull ratio = 0.98
osd failsafe full ratio = 0.995
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw enable usage log = false
CONF
ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >&2
ceph-mon -c "$CONF" -i a 2>>"$DIR/log/mon-start.log"
wait_for "the monitor" timeout 10 ceph -c "$CONF" mon stat

OSD_UUID="$(cat /proc/sys/kernel/random/uuid)"
OSD_ID="$(ceph -c "$CONF" osd new "$OSD_UUID")"
mkdir -p "$DIR/osd/ceph-$OSD_ID"
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >&2 2>"$DIR/log/osd-mkfs.log" || { cat "$DIR/log/osd-mkfs.log" >&2; exit 1; }
ceph-osd -c "$CONF" -i "$OSD_ID" 2>>"$DIR/log/osd-start.log"
osd_up() { ceph -c "$CONF" osd dump 2>/dev/null | grep -q "^osd.$OSD_ID up"; }
wait_for "the OSD" osd_up

radosgw -c "$CONF" -n client.rgw.a 2>>"$DIR/log/rgw-start.log"
wait_for "radosgw on port $RGW_PORT" port_accepts "$RGW_PORT"

ACCESS_KEY="hsmedia$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SECRET_KEY="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
wait_for "radosgw-admin user create" timeout 20 radosgw-admin -c "$CONF" -n client.rgw.a user create \
  --uid=hsmedia --display-name=hsmedia --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY"

cat > "$DIR/env" <<ENV
RGW_DIR=$DIR
RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT
RGW_ACCESS_KEY=$ACCESS_KEY
RGW_SECRET_KEY=$SECRET_KEY
ENV
cat "$DIR/env"
