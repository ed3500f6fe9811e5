#!/usr/bin/env bash
# HTTPS benchmark: zerotouch serving <mac>.cfg, <mac>-device.cfg and <mac>-profile.cfg for N
# associated phones over its device HTTPS listener (auth and recording on), against nginx
# serving the same bytes over HTTPS with the same certificate and key and auth_basic, in
# the same run, both driven by wrk with the same request script, 64 connections:
#   keep-alive   many requests per TLS connection                    (target >= 0.6 x nginx)
#   new-conn     one request per connection (Connection: close), session resumption as
#                each server does by default
#   full-hs      one request per connection, resumption off on both: every connection is
#                a full handshake (RSA-2048 by default)                (target >= 0.5 x nginx)
# Each measurement runs ROUNDS times, alternating servers; medians and ratios are printed.
#
# Usage: scripts/bench-tls.sh [DEVICES] [SECONDS] [CONNECTIONS] [ROUNDS]
# Env:   KEY_TYPE=rsa-2048|ecdsa-p256 (zerotouch's generated key, also served by nginx)
#        NGINX_HASH=plain|apr1 (htpasswd entry; apr1 costs nginx a key derivation per
#        request, which flatters zerotouch, so plain is the default: the harshest reference)
# Needs: nginx, wrk, python3, curl, openssl (apt-get install -y nginx wrk python3 curl openssl).
# Only loopback addresses are used; nginx runs in the foreground of a temp dir with its own
# configuration (no system service).
set -euo pipefail
DEVICES=${1:-1000}
SECONDS_PER_RUN=${2:-10}
CONNECTIONS=${3:-64}
ROUNDS=${4:-3}
KEY_TYPE=${KEY_TYPE:-rsa-2048}
NGINX_HASH=${NGINX_HASH:-plain}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
for tool in nginx wrk python3 curl openssl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx wrk python3 curl openssl)"; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building release binary..."
(cd "$TOP" && cargo build --release --quiet)
Z="$TOP/target/x86_64-unknown-linux-gnu/release/zerotouch"   # .cargo/config.toml sets the target
WORK=$(mktemp -d)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user
stop_zt() { [ -n "${ZPID:-}" ] && kill "$ZPID" 2>/dev/null && wait "$ZPID" 2>/dev/null; ZPID=; }
stop_nginx() { [ -n "${NGPID:-}" ] && kill "$NGPID" 2>/dev/null && wait "$NGPID" 2>/dev/null; NGPID=; }
cleanup() { stop_zt || true; stop_nginx || true; rm -rf "$WORK"; }
trap cleanup EXIT

ZPORT=$(free_port); ZSPORT=$(free_port); APORT=$(free_port); NPORT=$(free_port)
write_zt_config() { # resumption(true|false)
  cat > "$WORK/zt.toml" <<TOML
data_dir = "$WORK/data"
[device]
http_listen = "127.0.0.1:$ZPORT"
https_listen = "127.0.0.1:$ZSPORT"
[admin]
listen = "127.0.0.1:$APORT"
[limits]
# Every simulated phone comes from 127.0.0.1: one NAT address, as far as the per-address
# limits (connections, MACs read) are concerned.
nat_allowlist = ["127.0.0.0/8"]
[tls]
key_type = "$KEY_TYPE"
session_resumption = $1
[log]
level = "warn"
TOML
}
write_zt_config true
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
echo "adding $DEVICES devices with the CLI..."
for i in $(seq 0 $((DEVICES - 1))); do
  mac=$(printf '0004f2%06x' "$i")
  "$Z" device add --config "$WORK/zt.toml" "$mac" --profile bench --sip-server sip.example.com \
    --sip-user "$((1000 + i))" --sip-password "Line-Secret-$i" --display-name "Phone $i" >/dev/null
done

start_zt() {
  "$Z" serve --config "$WORK/zt.toml" >>"$WORK/zt.log" 2>&1 &
  ZPID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$ZPORT/" && break; sleep 0.1; done
}
start_zt
CERT="$WORK/data/tls/server.pem"; KEY="$WORK/data/tls/server.key"; CA="$WORK/data/tls/ca.pem"

# The exact bytes zerotouch serves over HTTPS in the measured phase (generated files depend
# on the scheme and on what the phone confirmed): fetched as wrk asks, the steady state.
python3 "$HERE/bench/fetch_all.py" --https "$CA" "127.0.0.1:$ZSPORT" "$USER" "$PASS" "$DEVICES" "$WORK/www"

if [ "$NGINX_HASH" = apr1 ]; then
  printf '%s:%s\n' "$USER" "$(openssl passwd -apr1 "$PASS")" > "$WORK/htpasswd"
else
  printf '%s:{PLAIN}%s\n' "$USER" "$PASS" > "$WORK/htpasswd"
fi
mkdir -p "$WORK/nginx-tmp"
start_nginx() { # resumption(on|off)
  local cache="ssl_session_cache shared:bench:10m; ssl_session_tickets on;"
  [ "$1" = off ] && cache="ssl_session_cache off; ssl_session_tickets off;"
  cat > "$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '\$status \$ssl_protocol \$ssl_session_reused';
  access_log $WORK/nginx-access.log bench;
  client_body_temp_path $WORK/nginx-tmp; proxy_temp_path $WORK/nginx-tmp; fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  types { application/xml cfg; }
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    $cache
    root $WORK/www;
    auth_basic "bench";
    auth_basic_user_file $WORK/htpasswd;
  }
}
NGINX
  nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' &
  NGPID=$!
  for _ in $(seq 50); do curl -sk -o /dev/null "https://127.0.0.1:$NPORT/" && break; sleep 0.1; done
}
start_nginx on
curl -sf --cacert "$CA" --resolve "localhost:$NPORT:127.0.0.1" -u "$USER:$PASS" \
  "https://localhost:$NPORT/0004f2000000-device.cfg" >/dev/null || { echo "nginx does not serve the files"; exit 1; }

AUTH="Basic $(printf '%s:%s' "$USER" "$PASS" | base64 -w0)"
cat > "$WORK/requests.lua" <<LUA
-- A random phone's master, generated or profile file, with credentials and the phone's
-- User-Agent (the one scripts/bench/fetch_all.py fetched nginx's copies with).
local files = {".cfg", "-device.cfg", "-profile.cfg"}
math.randomseed(os.time())
request = function()
  local mac = string.format("0004f2%06x", math.random(0, $DEVICES - 1))
  local ua = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 (SN:" .. mac .. ") Type/Application"
  local headers = {["Authorization"] = "$AUTH", ["User-Agent"] = ua}
  if os.getenv("BENCH_CLOSE") then headers["Connection"] = "close" end
  return wrk.format("GET", "/" .. mac .. files[math.random(1, 3)], headers)
end
LUA

run() { # label port close(0|1) -> "rps non2xx"
  local env=""
  [ "$3" = 1 ] && env="BENCH_CLOSE=1"
  env $env wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s "$WORK/requests.lua" "https://127.0.0.1:$2" > "$WORK/$1.out" 2>&1
  local rps non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.out")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/$1.out")
  echo "${rps:-0} ${non2xx:-0}"
}
declare -A RESULTS
NON2XX=0
measure() { # mode close
  for r in $(seq "$ROUNDS"); do
    read -r zr zerr < <(run "zt-$1-$r" "$ZSPORT" "$2")
    read -r nr nerr < <(run "ng-$1-$r" "$NPORT" "$2")
    printf '%-10s %-6s %-10s %12s %8s\n' "$1" "$r" zerotouch "$zr" "$zerr"
    printf '%-10s %-6s %-10s %12s %8s\n' "$1" "$r" nginx "$nr" "$nerr"
    RESULTS[$1-zt]+="$zr "; RESULTS[$1-ng]+="$nr "
    RESULTS[$1-bad]+="$((zerr + nerr)) "
  done
}
reused() { # fraction of nginx requests on resumed sessions since the last call
  local f="$WORK/nginx-access.log"
  [ -f "$f" ] || { echo "n/a"; return; }
  awk '{n++; if ($3=="r") r++} END {if (n) printf "%.2f", r/n; else print "n/a"}' "$f"
  : > "$f"
}

echo
echo "devices=$DEVICES connections=$CONNECTIONS seconds=$SECONDS_PER_RUN rounds=$ROUNDS cores=$(nproc) key=$KEY_TYPE nginx-auth=$NGINX_HASH"
echo "$(openssl x509 -in "$CERT" -noout -subject) / $(nginx -v 2>&1) / $(wrk -v 2>&1 | head -1)"
printf '%-10s %-6s %-10s %12s %8s\n' mode round server "req/s" non-2xx
: > "$WORK/nginx-access.log"
measure keep-alive 0
measure new-conn 1
NEWCONN_REUSED=$(reused)
stop_zt; stop_nginx
write_zt_config false
start_zt
start_nginx off
: > "$WORK/nginx-access.log"
measure full-hs 1
FULL_REUSED=$(reused)
echo "nginx requests on resumed sessions: new-conn $NEWCONN_REUSED, full-hs $FULL_REUSED"
# zerotouch must still serve the bytes nginx served: otherwise the two did not serve the same
# files and no ratio stands.
SAME=1
python3 "$HERE/bench/fetch_all.py" --https "$CA" --check "127.0.0.1:$ZSPORT" "$USER" "$PASS" "$DEVICES" "$WORK/www" || SAME=0
python3 - "$SAME" "${RESULTS[keep-alive-zt]}" "${RESULTS[keep-alive-ng]}" "${RESULTS[keep-alive-bad]}" "${RESULTS[new-conn-zt]}" "${RESULTS[new-conn-ng]}" "${RESULTS[new-conn-bad]}" "${RESULTS[full-hs-zt]}" "${RESULTS[full-hs-ng]}" "${RESULTS[full-hs-bad]}" <<'PY'
import statistics, sys
same = sys.argv[1] == "1"
v = [[float(x) for x in a.split()] for a in sys.argv[2:]]
print()
for (name, target), z, n, bad in zip([("keep-alive", 0.6), ("new-conn", None), ("full-hs", 0.5)], v[0::3], v[1::3], v[2::3]):
    zm, nm = statistics.median(z), statistics.median(n)
    t = f" (target >= {target:.2f})" if target else ""
    ratio = f"{zm/nm:.2f}" if same and sum(bad) == 0 else "INVALID"
    why = "" if ratio != "INVALID" else (" (non-2xx answers)" if sum(bad) else " (zerotouch's files changed)")
    print(f"{name:<10} median req/s: zerotouch {zm:8.0f}  nginx {nm:8.0f}  ratio {ratio}{t}{why}")
PY
echo "zerotouch health: $(curl -s "http://127.0.0.1:$APORT/healthz")"
