#!/usr/bin/env bash
# Benchmark: zerotouch serving <mac>.cfg, <mac>-device.cfg and <mac>-profile.cfg for N
# associated phones (auth and recording on), against nginx serving the same bytes as static
# files with auth_basic, in the same run, both driven by wrk with the same script.
#
# Usage: scripts/bench-http.sh [DEVICES] [SECONDS] [CONNECTIONS] [ROUNDS]
# Needs: nginx, wrk, python3, curl (apt-get install -y nginx wrk python3 curl).
set -euo pipefail
DEVICES=${1:-10000}
SECONDS_PER_RUN=${2:-15}
CONNECTIONS=${3:-64}
ROUNDS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
for tool in nginx wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx wrk python3 curl)"; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building release binary..."
(cd "$TOP" && cargo build --release --quiet)
Z="$TOP/target/x86_64-unknown-linux-gnu/release/zerotouch"   # .cargo/config.toml sets the target
WORK=$(mktemp -d)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user
cleanup() {
  [ -n "${ZPID:-}" ] && kill "$ZPID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ZPORT=$(free_port); APORT=$(free_port); NPORT=$(free_port)
cat > "$WORK/zt.toml" <<TOML
data_dir = "$WORK/data"
[device]
http_listen = "127.0.0.1:$ZPORT"
[admin]
listen = "127.0.0.1:$APORT"
[limits]
# Every simulated phone comes from 127.0.0.1: one NAT address, as far as the per-address
# limits (connections, MACs read) are concerned.
nat_allowlist = ["127.0.0.0/8"]
[log]
level = "warn"
TOML
USER=phones; PASS=Bench-Passw0rd-1
"$Z" migrate --config "$WORK/zt.toml" >/dev/null
"$Z" account set-credentials --config "$WORK/zt.toml" --user "$USER" --password "$PASS" >/dev/null
cat > "$WORK/site.cfg" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<polycomConfig tcpIpApp.sntp.address="pool.ntp.org" up.welcomeSoundEnabled="0" voIpProt.server.1.address="sip.example.com"
  feature.enhancedFeatureKeys.enabled="1" dialplan.digitmap="[0123456789*#].T" lcl.datetime.time.24HourClock="1"
  prov.autoConfigUpload.enabled="1" voice.volume.persist.handset="1" up.mwiVisible="1" phoneLock.enabled="0"/>
XML
# The profile's version must be in the firmware catalogue.
mkdir -p "$WORK/release"
printf '5.9.8.1234\n' > "$WORK/release/sip.ver"
printf 'placeholder image\n' > "$WORK/release/3111-48500-001.sip.ld"
"$Z" firmware import --config "$WORK/zt.toml" "$WORK/release" >/dev/null
"$Z" profile add --config "$WORK/zt.toml" bench --file "$WORK/site.cfg" --software VVX=5.9.8.1234 --polling enable >/dev/null
PROFILE_ID=$(python3 -c "import sqlite3;print(sqlite3.connect('$WORK/data/zerotouch.db').execute(\"select id from profiles where name='bench'\").fetchone()[0])")
python3 "$HERE/bench/populate.py" "$WORK/data/zerotouch.db" "$DEVICES" "$PROFILE_ID"

"$Z" serve --config "$WORK/zt.toml" >"$WORK/zt.log" 2>&1 &
ZPID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$ZPORT/" && break; sleep 0.1; done
python3 "$HERE/bench/fetch_all.py" "127.0.0.1:$ZPORT" "$USER" "$PASS" "$DEVICES" "$WORK/www"

# nginx: same files, same credentials (auth_basic), access log on like zerotouch's recording.
# The password is stored {PLAIN}: an apr1/crypt hash costs nginx a key derivation on every
# request (measured here: about 5,000 req/s), which would flatter zerotouch. Plain makes
# nginx as fast as it can be, the harshest reference.
printf '%s:{PLAIN}%s\n' "$USER" "$PASS" > "$WORK/htpasswd"
mkdir -p "$WORK/nginx-tmp"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/nginx-access.log;
  client_body_temp_path $WORK/nginx-tmp; proxy_temp_path $WORK/nginx-tmp; fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  types { application/xml cfg; }
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NPORT;
    root $WORK/www;
    auth_basic "bench";
    auth_basic_user_file $WORK/htpasswd;
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/" && break; sleep 0.1; done
curl -sf -u "$USER:$PASS" "http://127.0.0.1:$NPORT/0004f2000000.cfg" >/dev/null || { echo "nginx does not serve the files"; exit 1; }

AUTH="Basic $(printf '%s:%s' "$USER" "$PASS" | base64 -w0)"
export BENCH_AUTH="$AUTH" BENCH_DEVICES="$DEVICES"
run() { # name port -> "rps p50 p99"
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -s "$HERE/bench/requests.lua" "http://127.0.0.1:$2" > "$WORK/$1.out" 2>&1
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.out")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$1.out")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$1.out")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/$1.out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}
echo
echo "devices=$DEVICES connections=$CONNECTIONS seconds=$SECONDS_PER_RUN rounds=$ROUNDS cores=$(nproc)"
printf '%-6s %-10s %12s %10s %10s %8s\n' round server "req/s" p50 p99 non-2xx
ZS=(); NS=(); BAD=0
for r in $(seq "$ROUNDS"); do
  # BENCH_PERF=FILE records a CPU profile of zerotouch during its first run (perf record).
  if [ -n "${BENCH_PERF:-}" ] && [ "$r" = 1 ]; then
    perf record -F 499 -g -o "$BENCH_PERF" -p "$ZPID" -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
  fi
  read -r zr zp50 zp99 zerr < <(run "zt$r" "$ZPORT")
  read -r nr np50 np99 nerr < <(run "ng$r" "$NPORT")
  printf '%-6s %-10s %12s %10s %10s %8s\n' "$r" zerotouch "$zr" "$zp50" "$zp99" "$zerr"
  printf '%-6s %-10s %12s %10s %10s %8s\n' "$r" nginx "$nr" "$np50" "$np99" "$nerr"
  ZS+=("$zr"); NS+=("$nr"); BAD=$((BAD + zerr + nerr))
done
# zerotouch must still serve the bytes nginx served, and neither may have answered non-2xx:
# otherwise no ratio stands.
SAME=1
python3 "$HERE/bench/fetch_all.py" --check "127.0.0.1:$ZPORT" "$USER" "$PASS" "$DEVICES" "$WORK/www" || SAME=0
python3 - "$SAME" "$BAD" "${ZS[@]}" -- "${NS[@]}" <<'PY'
import statistics, sys
same, bad, args = sys.argv[1] == "1", int(sys.argv[2]), sys.argv[3:]
i = args.index("--")
z = [float(x) for x in args[:i]]; n = [float(x) for x in args[i+1:]]
zm, nm = statistics.median(z), statistics.median(n)
ratio = f"{zm/nm:.2f}" if same and bad == 0 else "INVALID (" + ("non-2xx answers" if bad else "zerotouch's files changed") + ")"
print(f"\nmedian req/s: zerotouch {zm:.0f}, nginx {nm:.0f}, ratio {ratio} (target >= 0.60)")
PY
echo "recorder: $(curl -s "http://127.0.0.1:$APORT/healthz")"
