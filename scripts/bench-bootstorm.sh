#!/usr/bin/env bash
# Boot storm: PHONES phones boot at once, each the test suite's phone simulator
# (benches/bootstorm.rs over tests/it/sim: the master's CONFIG_FILES, firmware by part
# number, logs, the 401 of every new connection answered as offered, device.* values
# adopted and the reboot they cause), against zerotouch and then against nginx serving
# the bytes zerotouch served in the same phase (HTTP and HTTPS, same certificate), with a
# ratio beside every figure. No phone's files are fetched before the first phase. Phases:
#   first-boot     a new deployment: PHONES associated phones that were never seen boot
#                  with the account's address and credentials (boot server Default, no
#                  serial tag), are sent Auto-Sync's values and zerotouch's serial tag,
#                  adopt them, reboot and boot again (the confirming boot)
#   known-http     the same phones after a power cut: provisioned (serial tag on, boot
#                  server Static), one boot each, nothing new to write
#   known-basic    known-http with phones that answer zerotouch's challenge with Basic, as
#                  they answer nginx's (the cost of Digest, apart)
#   known-https    the same over HTTPS, a full TLS handshake per connection
#   unknown        PHONES phones never associated: 404, 000000000000.cfg, <mac>-stage.cfg
#   firmware       200 provisioned phones running an older version: each downloads the
#                  50 MB image its part number names, reboots into it and boots again
#   idle+storm     known-http again while 5,000 idle keep-alive connections are held open
#   configs-only   master, generated and profile file per phone, 64 at once (the figure
#                  peers publish: requests/s)
# A phase's ratio is printed only when neither server had an error (a phone whose last boot
# did not end Configured); otherwise INVALID.
#
# Usage: scripts/bench-bootstorm.sh [PHONES] [CONCURRENCY]
# Env:   PHASES="known-http unknown ..." runs only those phases (default: all; phases after
#        first-boot expect it to have run);
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

# nginx serves zerotouch's bytes with zerotouch's ports replaced by its own: the same
# number of digits keeps every file the same size.
same_width_port() { local p; while :; do p=$(free_port); [ ${#p} -eq ${#1} ] && { echo "$p"; return; }; done; }
ZPORT=$(free_port); ZSPORT=$(free_port); APORT=$(free_port)
NPORT=$(same_width_port "$ZPORT"); NSPORT=$(same_width_port "$ZSPORT")
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

# nginx's root starts with what is not a phone's file (the image, the shared directory);
# each phase then adds the bytes zerotouch served in it (`--save`).
W="$WORK/www"
mkdir -p "$W/firmware/5.9.8.1234"
cp "$WORK/data/firmware/5.9.8.1234/3111-48500-001.sip.ld" "$W/firmware/5.9.8.1234/"
cp "$WORK/data/assets/000000000000-directory.xml" "$W/"
chmod -R a+rwX "$W"   # nginx's workers write the uploads
# sync_nginx DIR: copies a phase's saved bytes into nginx's root, zerotouch's ports replaced.
sync_nginx() {
  python3 - "$1" "$W" "127.0.0.1:$ZPORT" "127.0.0.1:$NPORT" "127.0.0.1:$ZSPORT" "127.0.0.1:$NSPORT" <<'PY'
import os, sys
src, dst, z, n, zs, ns = sys.argv[1:7]
assert len(z) == len(n) and len(zs) == len(ns)
for root, _, files in os.walk(src):
    for f in files:
        p = os.path.join(root, f)
        out = os.path.join(dst, os.path.relpath(p, src))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        os.chmod(os.path.dirname(out), 0o777)   # nginx's workers store uploads beside them
        data = open(p, "rb").read().replace(z.encode(), n.encode()).replace(zs.encode(), ns.encode())
        open(out, "wb").write(data)
        os.chmod(out, 0o666)
PY
}
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
  local save=()
  [ "$label" = zerotouch ] && save=(--save "$WORK/save/$phase")
  line=$("$STORM" --label "$label" --http "127.0.0.1:$port" --https "127.0.0.1:$sport" \
          --ca "$WORK/data/tls/ca.pem" --user "$BENCH_USER" --password "$BENCH_PASS" \
          --server-pid "$pid" "${save[@]}" "$@" | tee "$WORK/last.out" | grep '^RESULT')
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
  echo "  $phase $label: $(echo "$line" | tr ' ' '\n' | grep -E '^(phones_per_s|boots|requests|connections|requests_per_s|p99_ms|max_ms|errors|non2xx|firmware_mb_per_s|peak_rss_mb|peak_threads|idle_open|cpu_busy|server_cpu_s|server_us_per_req)=' | tr '\n' ' ')"
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
  sync_nginx "$WORK/save/$phase"
  storm "$phase" nginx "$NPORT" "$NSPORT" "$NGINX_MASTER" "$@"
}
echo
echo "phones=$PHONES concurrency=$CONCURRENCY cores=$(nproc)"
both first-boot --phones "$PHONES" --concurrency "$CONCURRENCY"
both known-http --phones "$PHONES" --concurrency "$CONCURRENCY" --provisioned
both known-basic --phones "$PHONES" --concurrency "$CONCURRENCY" --provisioned --basic
both known-https --phones "$PHONES" --concurrency "$CONCURRENCY" --provisioned --https-share 1
both unknown --phones "$PHONES" --concurrency "$CONCURRENCY" --unknown-share 1 --first 0
both firmware --phones 200 --concurrency 200 --provisioned --version 5.9.7.47435
both idle+storm --phones "$PHONES" --concurrency "$CONCURRENCY" --provisioned --idle 5000
both configs-only --phones "$PHONES" --concurrency 64 --provisioned --configs-only

python3 - "$RESULTS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    phase, _, rest = line.strip().partition(" RESULT ")
    kv = dict(p.split("=", 1) for p in rest.split())
    rows.setdefault(phase, {})[kv["label"]] = kv
cols = ("phase", "server", "seconds", "phones/s", "boots", "req/s", "conns", "p50 ms", "p95 ms", "p99 ms", "max ms", "errs", "MB/s", "RSS MB", "threads", "ratio")
fmt = "%-12s %-9s %7s %8s %6s %6s %6s %7s %7s %7s %7s %5s %7s %6s %7s %7s"
print("\n" + fmt % cols)
for phase, r in rows.items():
    z, n = r.get("zerotouch"), r.get("nginx")
    key = "firmware_mb_per_s" if phase == "firmware" else ("requests_per_s" if phase == "configs-only" else "phones_per_s")
    for label, kv in (("zerotouch", z), ("nginx", n)):
        if not kv: continue
        ratio = ""
        if label == "zerotouch" and n:
            if int(z["errors"]) or int(n["errors"]):
                ratio = "INVALID"
            elif float(n[key]) > 0:
                ratio = "%.2f" % (float(z[key]) / float(n[key]))
        print(fmt % (phase, label, kv["seconds"], kv["phones_per_s"], kv["boots"], kv["requests_per_s"], kv["connections"], kv["p50_ms"], kv["p95_ms"], kv["p99_ms"], kv["max_ms"], kv["errors"], kv["firmware_mb_per_s"], kv["peak_rss_mb"], kv["peak_threads"], ratio))
    for label, kv in (("zerotouch", z), ("nginx", n)):
        if kv and kv.get("non2xx", "none") != "none":
            print("%-12s %-9s non-2xx answers (status:count, challenges and optional 404s included): %s" % ("", label, kv["non2xx"]))
print("(ratio: zerotouch / nginx of phones/s; MB/s for firmware; req/s for configs-only; INVALID when a phone of either server did not end its boot configured. nginx's RSS and threads are its master process only.)")
PY
echo
echo "zerotouch at rest after the storms: $(grep -E 'VmRSS|Threads' /proc/$ZPID/status | tr -s ' \t' ' ' | tr '\n' ' ')"
echo "recorder: $(curl -s "http://127.0.0.1:$APORT/healthz")"
