#!/usr/bin/env bash
# Boot storm: PHONES phones boot at once (the full UCS sequence, 401 answered on every new
# connection), against zerotouch and against nginx serving the same bytes (HTTP and HTTPS,
# same certificate), in one run, with a ratio beside every figure. Phases:
#   first-boot     PHONES associated phones over HTTP keep-alive, CONCURRENCY at once, never
#                  seen before (a new deployment: every phone's state, directories and
#                  delivered values are written)
#   second-boot    the same phones again: each confirms what its first boot delivered (a
#                  write and a reload per phone); happens once per deployment or rotation
#   known-http     the same phones again in steady state: the boot after a power cut
#                  (run it after first-boot and second-boot)
#   known-https    the same over HTTPS, a full TLS handshake per phone
#   unknown        PHONES unknown phones enrolled by the stage policy (404, 000000000000.cfg,
#                  <mac>-stage.cfg); nginx serves the same files
#   firmware       200 phones fetching a 50 MB image at once (aggregate MB/s)
#   idle+storm     known-http again while 5,000 idle keep-alive connections are held open:
#                  the phones' boot after a power cut (seen before, nothing new to write)
#   configs-only   master + generated + profile file per phone (the peers' 1,400 req/s)
#
# Usage: scripts/bench-bootstorm.sh [PHONES] [CONCURRENCY]
# Env:   PHASES="known-http unknown ..." runs only those phases (default: all);
#        BENCH_PERF=DIR records a CPU profile of zerotouch per phase (perf record;
#        BENCH_PERF_CG=dwarf,16384 unwinds with DWARF, as release builds keep no frame pointers);
#        ZT_ENV="NAME=VALUE ..." sets environment for the server (e.g. GLIBC_TUNABLES);
#        ZT_WRAP="CMD ARGS" runs the server under CMD (e.g. valgrind --tool=dhat).
# Needs: nginx (with the dav module, as Debian's nginx-light), python3, curl, openssl.
set -euo pipefail
PHONES=${1:-10000}
CONCURRENCY=${2:-500}
source "$(dirname "$0")/bench/lib.sh"
need nginx python3 curl openssl
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_release
STORM=$(ls -t "$TOP"/target/x86_64-unknown-linux-gnu/release/deps/bootstorm-* | grep -v '\.d$' | head -1)
make_work
cleanup() {
  [ -n "${ZPID:-}" ] && kill "$ZPID" 2>/dev/null; [ -n "${NPID:-}" ] && kill "$NPID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ZPORT=$(free_port); ZSPORT=$(free_port); APORT=$(free_port); NPORT=$(free_port); NSPORT=$(free_port)
cat > "$WORK/zt.toml" <<TOML
data_dir = "$WORK/data"
[device]
http_listen = "127.0.0.1:$ZPORT"
https_listen = "127.0.0.1:$ZSPORT"
unassociated_cap = 1000000
[admin]
listen = "127.0.0.1:$APORT"
[limits]
# Every simulated phone comes from 127.0.0.1: one NAT address, as far as the per-address
# limits (connections, MACs read) are concerned.
nat_allowlist = ["127.0.0.0/8"]
# Idle phones in the idle phase must stay connected for the whole storm.
device_idle_secs = 120
[log]
level = "warn"
TOML
# The 50 MB image goes into the catalogue with the release populate imports.
mkdir -p "$WORK/release-5.9.8.1234"
head -c 50000000 /dev/urandom > "$WORK/release-5.9.8.1234/3111-48500-001.sip.ld"
populate "$WORK/zt.toml" "$PHONES"
mkdir -p "$WORK/data/assets"
printf '<directory><item_list><item><fn>Reception</fn><ct>100</ct></item></item_list></directory>\n' > "$WORK/data/assets/000000000000-directory.xml"
env ${ZT_ENV:-} ${ZT_WRAP:-} "$Z" serve --config "$WORK/zt.toml" > "$WORK/zt.log" 2>&1 &
ZPID=$!
wait_http "http://127.0.0.1:$ZPORT/" || { cat "$WORK/zt.log"; exit 1; }

echo "copying the bytes zerotouch serves into nginx's root..."
W="$WORK/www"
fetch_for_nginx "127.0.0.1:$ZPORT" "$PHONES" "$W"
mkdir -p "$W/firmware/5.9.8.1234" "$W/logs" "$W/overrides" "$W/contacts" "$W/calllists"
cp "$WORK/data/firmware/5.9.8.1234/3111-48500-001.sip.ld" "$W/firmware/5.9.8.1234/"
cp "$WORK/data/assets/000000000000-directory.xml" "$W/"
AUTHH="Authorization: Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASS" | base64 -w0)"
curl -sf -H "$AUTHH" "http://127.0.0.1:$ZPORT/000000000000.cfg" > "$W/000000000000.cfg"
curl -sf -H "$AUTHH" "http://127.0.0.1:$ZPORT/0004f3000000-stage.cfg" > "$WORK/stage.cfg"
python3 - "$W" "$PHONES" "$WORK/stage.cfg" <<'PY'
import shutil, sys
root, n, stage = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for r in range(3):                      # unknown MACs of every round
    for i in range(n):
        shutil.copyfile(stage, "%s/0004f3%06x-stage.cfg" % (root, r * n + i))
PY
chmod -R a+rwX "$W"   # nginx's workers write the uploads
write_nginx_conf "$WORK/nginx.conf" "$W" "$NPORT" "$NSPORT" "$WORK/data/tls/server.pem" "$WORK/data/tls/server.key"
chmod 644 "$WORK/data/tls/server.key"
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NPID=$!
wait_http "http://127.0.0.1:$NPORT/" || { cat "$WORK/nginx-error.log"; exit 1; }

NGINX_MASTER=$NPID
RESULTS="$WORK/results"
: > "$RESULTS"
# CPU seconds used so far by a process and its children (nginx's workers), from /proc.
cpu_secs() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  python3 -c "print('%.2f' % ($t / $(getconf CLK_TCK)))"
}
# storm PHASE LABEL PORT SPORT PID ARGS...
storm() {
  local phase=$1 label=$2 port=$3 sport=$4 pid=$5; shift 5
  local line before after cpu0
  before=$(head -1 /proc/stat)
  cpu0=$(cpu_secs "$pid")
  line=$("$STORM" --label "$label" --http "127.0.0.1:$port" --https "127.0.0.1:$sport" \
          --ca "$WORK/data/tls/ca.pem" --user "$BENCH_USER" --password "$BENCH_PASS" \
          --server-pid "$pid" "$@" | tee "$WORK/last.out" | grep '^RESULT')
  after=$(head -1 /proc/stat)
  # The server's own CPU time per request: the cost that decides how many phones a core
  # serves, apart from the simulator sharing the machine.
  local cpu1; cpu1=$(cpu_secs "$pid")
  line="$line server_cpu_s=$(python3 -c "print('%.2f' % ($cpu1 - $cpu0))") server_us_per_req=$(python3 -c "
import re; r = int(re.search(r' requests=(\d+)', ' $line').group(1))
print('%.1f' % (1e6 * ($cpu1 - $cpu0) / max(r, 1)))")"
  # Share of both cores busy during the storm (server and simulator together): below ~95%
  # something waits rather than computes.
  line="$line cpu_busy=$(python3 -c 'import sys
b = [int(x) for x in sys.argv[1].split()[1:]]; a = [int(x) for x in sys.argv[2].split()[1:]]
d = [y - x for x, y in zip(b, a)]; idle = d[3] + d[4]
print("%.0f%%" % (100.0 * (sum(d) - idle) / max(sum(d), 1)))' "$before" "$after")"
  grep '^  error' "$WORK/last.out" | sed "s/^/    [$label $phase]/" || true
  echo "$phase $line" >> "$RESULTS"
  echo "  $phase $label: $(echo "$line" | tr ' ' '\n' | grep -E '^(phones_per_s|requests_per_s|p99_ms|max_ms|errors|firmware_mb_per_s|peak_rss_mb|peak_threads|idle_open|cpu_busy|server_cpu_s|server_us_per_req)=' | tr '\n' ' ')"
}
# nginx's figures include its workers: sample the busiest worker's RSS would understate, so
# the master PID is passed (RSS is then not comparable; zerotouch's is the figure that counts).
both() {
  local phase=$1; shift
  if [ -n "${PHASES:-}" ] && ! grep -qw -- "$phase" <<< "$PHASES"; then return; fi
  local perf_pid=
  if [ -n "${BENCH_PERF:-}" ]; then
    mkdir -p "$BENCH_PERF"
    perf record -F 499 --call-graph "${BENCH_PERF_CG:-fp}" -o "$BENCH_PERF/$phase.data" -p "$ZPID" >"$BENCH_PERF/$phase.log" 2>&1 &
    perf_pid=$!
    sleep 1   # let perf attach before the storm starts
  fi
  storm "$phase" zerotouch "$ZPORT" "$ZSPORT" "$ZPID" "$@"
  if [ -n "$perf_pid" ]; then kill -TERM "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; fi
  storm "$phase" nginx "$NPORT" "$NSPORT" "$NGINX_MASTER" "$@"
}
echo
echo "phones=$PHONES concurrency=$CONCURRENCY cores=$(nproc)"
both first-boot --phones "$PHONES" --concurrency "$CONCURRENCY"
both second-boot --phones "$PHONES" --concurrency "$CONCURRENCY"
both known-http --phones "$PHONES" --concurrency "$CONCURRENCY"
both known-https --phones "$PHONES" --concurrency "$CONCURRENCY" --https-share 1
both unknown --phones "$PHONES" --concurrency "$CONCURRENCY" --unknown-share 1 --first 0
both firmware --phones 200 --concurrency 200 --firmware-share 1
both idle+storm --phones "$PHONES" --concurrency "$CONCURRENCY" --idle 5000
both configs-only --phones "$PHONES" --concurrency 64 --configs-only

python3 - "$RESULTS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    phase, _, rest = line.strip().partition(" RESULT ")
    kv = dict(p.split("=", 1) for p in rest.split())
    rows.setdefault(phase, {})[kv["label"]] = kv
print("\n%-12s %-9s %7s %8s %6s %7s %7s %7s %7s %5s %7s %6s %7s %6s" % ("phase", "server", "seconds", "phones/s", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errs", "MB/s", "RSS MB", "threads", "ratio"))
for phase, r in rows.items():
    z, n = r.get("zerotouch"), r.get("nginx")
    key = "firmware_mb_per_s" if phase == "firmware" else ("requests_per_s" if phase == "configs-only" else "phones_per_s")
    for label, kv in (("zerotouch", z), ("nginx", n)):
        if not kv: continue
        ratio = ""
        if label == "zerotouch" and n and float(n[key]) > 0:
            ratio = "%.2f" % (float(z[key]) / float(n[key]))
        print("%-12s %-9s %7s %8s %6s %7s %7s %7s %7s %5s %7s %6s %7s %6s" % (phase, label, kv["seconds"], kv["phones_per_s"], kv["requests_per_s"], kv["p50_ms"], kv["p95_ms"], kv["p99_ms"], kv["max_ms"], kv["errors"], kv["firmware_mb_per_s"], kv["peak_rss_mb"], kv["peak_threads"], ratio))
print("(ratio: zerotouch / nginx of phones/s; MB/s for firmware; req/s for configs-only. nginx's RSS and threads are its master process only.)")
PY
echo
echo "zerotouch at rest after the storms: $(grep -E 'VmRSS|Threads' /proc/$ZPID/status | tr -s ' \t' ' ' | tr '\n' ' ')"
echo "recorder: $(curl -s "http://127.0.0.1:$APORT/healthz")"
