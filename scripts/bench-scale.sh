#!/usr/bin/env bash
# Scale benchmark: zerotouch with DEVICES associated phones (one line each), measured end to
# end in one run, printed as a table:
#   set-up       populate time (SQLite, scripts/bench/populate.py); the first start, which
#                seals the plaintext line passwords populate wrote (once); the real start-up
#                (a restart: launch until the admin listener's /readyz answers 200)
#   memory       VmRSS and threads (and peak RSS) at idle (3 s after the restart is ready, no traffic yet),
#                after the config-fetch phase (5 s idle), and after the console/API phase
#   config fetch wrk (-t2 -c64, 20 s, scripts/bench/requests.lua: <mac>.cfg, -device.cfg,
#                -profile.cfg with Basic credentials) over a hot subset of 10,000 phones,
#                then over all DEVICES (mostly cache misses); req/s, p50, p99, non-200
#   console/API  Find Operations (prefix, exact, %contains%, deep pages) and the inventory
#                (all, filtered), 5 runs each, median and max of curl's time_total; the same
#                Find and inventory pages of the HTML console, signed in with a session cookie;
#                the dashboard, the device list sorted and filtered, and a device page
# The config-fetch phase runs before the console/API phase so that the RSS figures belong to
# one phase each, and so that the inventory sees phones that have checked in.
#
# Usage: scripts/bench-scale.sh [DEVICES]        (default 1000000)
# Env:   BENCH_KEEP (set: keep the work directory and its database for profiling),
#        BENCH_REPS (5), BENCH_WRK_SECONDS (20), BENCH_HOT (10000), BENCH_API_TIMEOUT (300 s)
# Needs: wrk, python3, curl (apt-get install -y wrk python3 curl); nginx is not needed. The
#        release binary is built if it is missing. Everything listens on 127.0.0.1 only.
set -euo pipefail
DEVICES=${1:-1000000}
REPS=${BENCH_REPS:-5}
WRK_SECONDS=${BENCH_WRK_SECONDS:-20}
HOT=${BENCH_HOT:-10000}
API_TIMEOUT=${BENCH_API_TIMEOUT:-300}
FIRST_START_TIMEOUT=1800   # the first start seals every plaintext secret: allow for it
START_TIMEOUT=60
STOP_TIMEOUT=60
[ "$HOT" -le "$DEVICES" ] || HOT=$DEVICES
source "$(dirname "$0")/bench/lib.sh"
need wrk python3 curl
[ -x "$Z" ] || (cd "$TOP" && echo "building the release binary..." && cargo build --release --quiet)

fail() { echo "FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

make_work
ZPID=
cleanup() {
  if [ -n "$ZPID" ] && kill -0 "$ZPID" 2>/dev/null; then
    kill -TERM "$ZPID" 2>/dev/null || true
    wait "$ZPID" 2>/dev/null || true
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept: $WORK (config $WORK/zt.toml)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ZPORT=$(free_port); ZSPORT=$(free_port); APORT=$(free_port)
CFG="$WORK/zt.toml"
cat > "$CFG" <<TOML
data_dir = "$WORK/data"
[device]
http_listen = "127.0.0.1:$ZPORT"
# Not measured; set so that nothing listens beyond loopback (the default is 0.0.0.0:8443).
https_listen = "127.0.0.1:$ZSPORT"
[admin]
listen = "127.0.0.1:$APORT"
[limits]
# Every simulated phone comes from 127.0.0.1: one NAT address, as far as the per-address
# limits (connections, MACs read) are concerned.
nat_allowlist = ["127.0.0.0/8"]
[log]
level = "warn"
TOML
DB="$WORK/data/zerotouch.db"
ADMIN="http://127.0.0.1:$APORT"

# Secret values still in plaintext, over the columns the server seals on start
# (SECRET_COLUMNS in src/db/secrets.rs).
plaintext_secrets() {
  python3 - "$DB" <<'PY'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
cols = [("accounts", "device_password", "1"), ("account_credentials", "password", "1"),
        ("profiles", "prov_password", "1"), ("devices", "prov_password", "1"),
        ("device_lines", "auth_password", "1"), ("device_credentials", "password", "1"),
        ("device_credentials", "previous", "1"),
        ("prov_settings", "value", "key IN ('http_password','ftp_password','external_password','s3_secret_key')")]
n = 0
for table, col, where in cols:
    n += conn.execute(f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND {col} <> ''"
                      f" AND {col} NOT LIKE 'enc:v1:%' AND {col} NOT LIKE 'enc:v2:%' AND ({where})").fetchone()[0]
print(n)
PY
}

# start_server TIMEOUT: launches the server and waits until /readyz answers 200; sets ZPID
# and READY_S (seconds from launch to ready).
start_server() {
  local timeout=$1 t0 code
  t0=$(now)
  "$Z" serve --config "$CFG" >>"$WORK/zt.log" 2>&1 &
  ZPID=$!
  while :; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$ADMIN/readyz" || true)
    [ "$code" = 200 ] && break
    if ! kill -0 "$ZPID" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$ZPID/stat" 2>/dev/null)" = Z ]; then
      wait "$ZPID" || true; ZPID=
      tail -20 "$WORK/zt.log" >&2; fail "zerotouch exited before /readyz answered 200"
    fi
    if [ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -ge "$timeout" ]; then
      tail -20 "$WORK/zt.log" >&2; fail "/readyz did not answer 200 within $timeout s (last status $code)"
    fi
    sleep 0.01
  done
  READY_S=$(elapsed "$t0" "$(now)")
}

# stop_server: SIGTERM, wait for the exit; sets STOP_S.
stop_server() {
  local t0 state rc=0
  t0=$(now)
  kill -TERM "$ZPID"
  while :; do
    state=$(awk '{print $3}' "/proc/$ZPID/stat" 2>/dev/null || echo gone)
    [ "$state" = Z ] || [ "$state" = gone ] && break
    if [ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -ge "$STOP_TIMEOUT" ]; then
      fail "zerotouch did not exit within $STOP_TIMEOUT s of SIGTERM"
    fi
    sleep 0.01
  done
  wait "$ZPID" || rc=$?
  STOP_S=$(elapsed "$t0" "$(now)")
  ZPID=
  [ "$rc" = 0 ] || { tail -20 "$WORK/zt.log" >&2; fail "zerotouch exited with status $rc after SIGTERM"; }
}

rss() { # -> VmRSS, threads, and the peak RSS since the start (VmHWM)
  awk '/^VmRSS/ { rss = $2 } /^VmHWM/ { hwm = $2 } /^Threads/ { t = $2 }
       END { printf "VmRSS %7.1f MB   threads %3d   (peak %.1f MB)", rss / 1024, t, hwm / 1024 }' "/proc/$ZPID/status"
}

row() { printf '  %-62s %s\n' "$1" "$2"; }

echo "zerotouch scale bench: devices=$DEVICES cores=$(nproc) $("$Z" --version 2>/dev/null || true)"
echo

# --- set-up ------------------------------------------------------------------------------
echo "== set-up"
t0=$(now)
populate "$CFG" "$DEVICES" >/dev/null
POPULATE_S=$(elapsed "$t0" "$(now)")
row "populate ($DEVICES devices, one line each)" "$(printf '%8s s   (database %d MB)' "$POPULATE_S" $(( $(stat -c %s "$DB") / 1048576 )))"

PLAIN=$(plaintext_secrets)
start_server "$FIRST_START_TIMEOUT"
FIRST_S=$READY_S
LEFT=$(plaintext_secrets)
[ "$LEFT" = 0 ] || fail "$LEFT secrets still in plaintext after the first start"
stop_server
row "first start (seals $PLAIN plaintext secrets once)" "$(printf '%8s s   (then SIGTERM to exit: %s s)' "$FIRST_S" "$STOP_S")"

start_server "$START_TIMEOUT"
row "start-up (restart until /readyz 200; target < 2 s)" "$(printf '%8s s' "$READY_S")"
echo

# --- memory at idle ----------------------------------------------------------------------
sleep 3
echo "== memory"
row "idle, 3 s after ready, no traffic yet" "$(rss)"
echo

# --- config fetch ------------------------------------------------------------------------
AUTH="Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASS" | base64 -w0)"
curl -sf -o /dev/null -H "Authorization: $AUTH" "http://127.0.0.1:$ZPORT/0004f2000000.cfg" \
  || fail "zerotouch does not serve http://127.0.0.1:$ZPORT/0004f2000000.cfg"

# wrk_run NAME COUNT SECONDS: wrk over COUNT phones; leaves WRK_* set.
wrk_run() {
  local name=$1 count=$2 secs=$3 out="$WORK/$1.out" err="$WORK/$1.err"
  BENCH_DEVICES=$count BENCH_AUTH="$AUTH" timeout $((secs + 30)) \
    wrk -t2 -c64 -d"${secs}s" --latency -s "$TOP/scripts/bench/requests.lua" "http://127.0.0.1:$ZPORT" >"$out" 2>"$err" \
    || { cat "$out" "$err" >&2; fail "wrk ($name) failed"; }
  WRK_RPS=$(awk '/^Requests\/sec/ { print $2 }' "$out")
  WRK_P50=$(awk '$1 == "50%" { print $2 }' "$out")
  WRK_P99=$(awk '$1 == "99%" { print $2 }' "$out")
  WRK_REQ=$(awk '/requests in/ { print $1 }' "$out")
  WRK_NON2XX=$(awk '/Non-2xx/ { print $5 }' "$out"); WRK_NON2XX=${WRK_NON2XX:-0}
  WRK_SOCK=$(sed -n 's/^ *Socket errors: *//p' "$out"); WRK_SOCK=${WRK_SOCK:-none}
  # requests.lua reports the first few non-200 statuses of each thread on stderr.
  WRK_STDERR=$(grep -c 'unexpected status' "$err" || true)
  WRK_FIRST=$(grep -m1 'unexpected status' "$err" || true)
  [ -n "$WRK_RPS" ] || { cat "$out" "$err" >&2; fail "no figures in wrk's output ($name)"; }
}
echo "== config fetch: wrk -t2 -c64 ${WRK_SECONDS}s, 3 files per phone, Basic auth"
# The hot subset's files are fetched once, untimed, so that the hot run measures a warm cache.
wrk_run warmup "$HOT" 5
printf '  %-24s %10s %10s %10s %10s %9s %9s  %s\n' phones "req/s" p50 p99 requests non-200 "stderr" "socket errors"
wrk_run hot "$HOT" "$WRK_SECONDS"
HOT_RPS=$WRK_RPS
printf '  %-24s %10s %10s %10s %10s %9s %9s  %s\n' "hot subset $HOT" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$WRK_REQ" "$WRK_NON2XX" "$WRK_STDERR" "$WRK_SOCK"
[ -z "$WRK_FIRST" ] || echo "    first: $WRK_FIRST"
wrk_run all "$DEVICES" "$WRK_SECONDS"
printf '  %-24s %10s %10s %10s %10s %9s %9s  %s\n' "all $DEVICES" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$WRK_REQ" "$WRK_NON2XX" "$WRK_STDERR" "$WRK_SOCK"
[ -z "$WRK_FIRST" ] || echo "    first: $WRK_FIRST"
row "ratio all/hot (req/s)" "$(awk -v a="$WRK_RPS" -v h="$HOT_RPS" 'BEGIN { printf "%.2f", a / h }')"
sleep 5
row "memory after the config fetch, 5 s idle" "$(rss)"
echo

# --- console / API -----------------------------------------------------------------------
# A second admin with a known password (no password change pending) holds the API token
# and signs in to the console.
CONSOLE_PASS=Bench-Console-Passw0rd-1
echo "$CONSOLE_PASS" | "$Z" user add --config "$CFG" --role admin --password-stdin bench-console >/dev/null
TOKEN=$("$Z" user token --config "$CFG" --name bench-scale bench-console | tail -1)
[ -n "$TOKEN" ] || fail "no API token printed"
BEARER="Authorization: Bearer $TOKEN"
SLUG=$(curl -sf -m "$API_TIMEOUT" -H "$BEARER" "$ADMIN/api/v1/accounts" \
  | python3 -c 'import json, sys; print(next(a["slug"] for a in json.load(sys.stdin)["accounts"] if a["is_default"]))') \
  || fail "GET $ADMIN/api/v1/accounts (the default account's slug)"
code=$(curl -s -m 30 -c "$WORK/cookies" -o /dev/null -w '%{http_code}' \
  --data-urlencode username=bench-console --data-urlencode "password=$CONSOLE_PASS" "$ADMIN/login")
[ "$code" = 303 ] && grep -q zt_session "$WORK/cookies" || fail "console sign-in: HTTP $code, no session cookie"

# What a body holds: the page of a Find (JSON or HTML), or the devices of an inventory.
COUNT_PY='
import re, sys
b = open(sys.argv[1], "rb").read()
m = re.search(rb"Showing ([\d\xe2\x80\x93]+) of (\d+) matching \xc2\xb7 (\d+) devices", b)
if m: print("rows %s of %s matching, %s devices" % (m.group(1).decode(), m.group(2).decode(), m.group(3).decode())); sys.exit()
m = re.search(rb"Page \d+ of \d+\+? \xc2\xb7 (\d+\+?) results?", b)
if m: print("%d rows of %s" % (b.count(b"<tr>") - 1, m.group(1).decode())); sys.exit()
if b"No results." in b: print("0 rows of 0"); sys.exit()
if b.startswith(b"{"):
    total = re.findall(rb"\"total\":(\d+)", b)
    matched = re.findall(rb"\"matched\":(\d+)", b)
    more = b"\"more\":true" in b
    if matched:
        print("%d rows of %s matching, %s devices" % (b.count(b"\"mac\":"), matched[-1].decode(), total[-1].decode())); sys.exit()
    print("%d rows of %s%s" % (b.count(b"\"mac\":"), total[-1].decode() if total else "?", "+" if more else "")); sys.exit()
print("?")
'
# timed LABEL URL CURL_ARGS...: REPS runs; fails unless every one answers 200.
timed() {
  local label=$1 url=$2 out code t size times=()
  shift 2
  for _ in $(seq "$REPS"); do
    out=$(curl -sS -o "$WORK/body" -w '%{http_code} %{time_total} %{size_download}' -m "$API_TIMEOUT" "$@" "$url") \
      || fail "$label: curl $url failed (timeout ${API_TIMEOUT}s)"
    read -r code t size <<< "$out"
    [ "$code" = 200 ] || { head -c 400 "$WORK/body" >&2; echo >&2; fail "$label: HTTP $code from $url"; }
    times+=("$t")
  done
  printf '  %-50s %9s %9s %12s  %s\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" \
    "$(printf '%s\n' "${times[@]}" | sort -g | tail -1)" \
    "$(awk -v s="$size" 'BEGIN { if (s >= 1048576) printf "%.1f MB", s / 1048576; else printf "%.1f kB", s / 1024 }')" \
    "$(python3 -c "$COUNT_PY" "$WORK/body")"
}
API="$ADMIN/api/v1"
LAST_PAGE=$(( (DEVICES + 9) / 10 ))
# The populated MACs are 0004f2000000 upwards: the middle one, and its first 9 digits as a
# prefix (4,096 MACs); 0004f2ab% matches none below 11,206,656 devices.
EXACT=$(printf '0004f2%06x' $(( DEVICES / 2 )))
PREFIX=${EXACT:0:9}
echo "== console / API: $REPS runs each, curl time_total in seconds"
echo "   (Find with view=device: populate writes devices without subscribers, so the default"
echo "    reference view finds nothing; per_page is the default 10)"
printf '  %-50s %9s %9s %12s  %s\n' request median max size results
timed "API find mac=$PREFIX% (prefix)" "$API/find?view=device&mac=$PREFIX%25" -H "$BEARER"
timed "API find mac=0004f2ab% (prefix, no match)" "$API/find?view=device&mac=0004f2ab%25" -H "$BEARER"
timed "API find mac=$EXACT (exact)" "$API/find?view=device&mac=$EXACT" -H "$BEARER"
timed "API find mac=%abcd% (contains)" "$API/find?view=device&mac=%25abcd%25" -H "$BEARER"
timed "API find all, page 1000" "$API/find?view=device&page=1000" -H "$BEARER"
timed "API find all, page $LAST_PAGE (last)" "$API/find?view=device&page=$LAST_PAGE" -H "$BEARER"
timed "API inventory (all)" "$API/accounts/$SLUG/inventory" -H "$BEARER"
timed "API inventory, last page of 100" "$API/accounts/$SLUG/inventory?page=$(( (DEVICES + 99) / 100 ))" -H "$BEARER"
timed "API inventory ?state=provisioned-active" "$API/accounts/$SLUG/inventory?state=provisioned-active" -H "$BEARER"
timed "API inventory ?flag=firmware-behind" "$API/accounts/$SLUG/inventory?flag=firmware-behind" -H "$BEARER"
timed "API inventory ?flag=locked-out (none)" "$API/accounts/$SLUG/inventory?flag=locked-out" -H "$BEARER"
timed "console /find mac=$PREFIX% (HTML)" "$ADMIN/find?view=device&mac=$PREFIX%25" -b "$WORK/cookies"
timed "console /find mac=%abcd% (HTML)" "$ADMIN/find?view=device&mac=%25abcd%25" -b "$WORK/cookies"
timed "console inventory (all, HTML)" "$ADMIN/accounts/$SLUG/inventory" -b "$WORK/cookies"
timed "console inventory ?flag=locked-out (HTML, none)" "$ADMIN/accounts/$SLUG/inventory?flag=locked-out" -b "$WORK/cookies"
timed "console dashboard / (HTML)" "$ADMIN/" -b "$WORK/cookies"
timed "API summary (the dashboard's counts)" "$API/accounts/$SLUG/summary" -H "$BEARER"
timed "console device list ?sort=name (HTML)" "$ADMIN/accounts/$SLUG/inventory?sort=name" -b "$WORK/cookies"
timed "console device list ?state=staged&sort=last-seen&dir=desc (HTML)" "$ADMIN/accounts/$SLUG/inventory?state=staged&sort=last-seen&dir=desc" -b "$WORK/cookies"
timed "console device list ?q=$PREFIX&sort=firmware (HTML)" "$ADMIN/accounts/$SLUG/inventory?q=$PREFIX&sort=firmware" -b "$WORK/cookies"
timed "console device page /devices/$EXACT (HTML)" "$ADMIN/devices/$EXACT" -b "$WORK/cookies"
row "memory after the console/API phase" "$(rss)"
