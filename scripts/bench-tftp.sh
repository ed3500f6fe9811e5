#!/usr/bin/env bash
# Benchmark: N simulated phones each reading their three files over TFTP — the
# unknown-device master 000000000000.cfg, their <mac>-stage.cfg and a firmware image
# (512-byte blocks, no options, C phones at once) — from zerotouch and from tftpd-hpa
# serving the same bytes from a directory, in the same run; prints both rates and the ratio
# (target: zerotouch >= 0.5x tftpd-hpa). The driver is benches/tftp.rs. Not run in CI.
#
# Usage: scripts/bench-tftp.sh [PHONES] [CONCURRENCY] [IMAGE_KIB]
#   ZT_BIN=path/to/zerotouch uses that binary instead of building the release one.
#   (the issue's figure is 10000 phones; the default is smaller for a quick run)
# Needs: tftpd-hpa (in.tftpd), python3 (apt-get install -y tftpd-hpa python3).
set -euo pipefail
PHONES=${1:-2000}
CONCURRENCY=${2:-32}
IMAGE_KIB=${3:-64}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
TFTPD=$(command -v in.tftpd || echo /usr/sbin/in.tftpd)
[ -x "$TFTPD" ] || { echo "missing in.tftpd (apt-get install -y tftpd-hpa)"; exit 1; }
command -v python3 >/dev/null || { echo "missing python3"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

Z=${ZT_BIN:-$TOP/target/x86_64-unknown-linux-gnu/release/zerotouch}   # .cargo/config.toml sets the target
if [ -z "${ZT_BIN:-}" ]; then
  echo "building the release binary..."
  (cd "$TOP" && nice cargo build --release --locked --quiet)
fi
WORK=$(mktemp -d)
chmod 755 "$WORK"
cleanup() {
  [ -n "${ZPID:-}" ] && kill "$ZPID" 2>/dev/null || true
  [ -n "${TPID:-}" ] && kill "$TPID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ZPORT=$(free_port); HPORT=$(free_port); APORT=$(free_port); TPORT=$(free_port)
cat > "$WORK/zt.toml" <<TOML
data_dir = "$WORK/data"
[device]
http_listen = "127.0.0.1:$HPORT"
https_listen = ""
[admin]
listen = "127.0.0.1:$APORT"
[tftp]
listen = "127.0.0.1:$ZPORT"
allow = ["127.0.0.0/8"]
max_transfers = 256
[log]
level = "warn"
TOML
"$Z" migrate --config "$WORK/zt.toml" >/dev/null
# The same image in both trees.
mkdir -p "$WORK/data/firmware/1.0" "$WORK/root/firmware/1.0"
head -c $((IMAGE_KIB * 1024 + 100)) /dev/urandom > "$WORK/root/firmware/1.0/sip.ld"
cp "$WORK/root/firmware/1.0/sip.ld" "$WORK/data/firmware/1.0/sip.ld"

"$Z" serve --config "$WORK/zt.toml" >"$WORK/zt.log" 2>&1 &
ZPID=$!
for _ in $(seq 1 100); do grep -q "admin listening" "$WORK/zt.log" 2>/dev/null && break; sleep 0.1; done
grep -q "TFTP listening" "$WORK/zt.log" || { cat "$WORK/zt.log"; exit 1; }

# tftpd-hpa gets exactly the bytes zerotouch serves (read back over zerotouch's TFTP).
fetch() { # NAME OUT
  python3 - "$ZPORT" "$1" "$2" <<'PY'
import socket, sys
port, name, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b"\0\1" + name.encode() + b"\0octet\0", ("127.0.0.1", port))
data, want = b"", 1
while True:
    p, peer = s.recvfrom(1024)
    assert p[1] == 3, p
    blk = int.from_bytes(p[2:4], "big"); s.sendto(b"\0\4" + p[2:4], peer)
    if blk == want:
        data += p[4:]; want = (want + 1) & 0xffff
        if len(p) - 4 < 512: break
open(out, "wb").write(data)
PY
}
fetch 000000000000.cfg "$WORK/root/000000000000.cfg"
fetch 0004f2000000-stage.cfg "$WORK/stage.cfg"
python3 - "$WORK/root" "$WORK/stage.cfg" "$PHONES" <<'PY'
import os, sys
root, stage, n = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
for i in range(n):
    open(os.path.join(root, "0004f2%06x-stage.cfg" % i), "wb").write(stage)
PY
cmp "$WORK/root/firmware/1.0/sip.ld" "$WORK/data/firmware/1.0/sip.ld"

# tftpd-hpa as this user on a loopback port (-L: foreground; -s: the tree is the root;
# -u: stay this user, as a non-root user cannot switch).
"$TFTPD" -L -s "$WORK/root" -a "127.0.0.1:$TPORT" -u "$(id -un)" &
TPID=$!
sleep 0.5

# The driver uses only std: compiled on its own, in seconds.
DRIVER="$WORK/tftp-load"
rustc --edition 2024 -O -o "$DRIVER" "$TOP/benches/tftp.rs"
run() { "$DRIVER" --server "127.0.0.1:$1" --phones "$PHONES" --concurrency "$CONCURRENCY" --image firmware/1.0/sip.ld; }
echo "phones=$PHONES concurrency=$CONCURRENCY image=${IMAGE_KIB}KiB+100B (3 files per phone)"
Z_OUT=$(run "$ZPORT"); echo "zerotouch:  $Z_OUT"
T_OUT=$(run "$TPORT"); echo "tftpd-hpa:  $T_OUT"
rate() { sed -n 's/.*files_per_sec=\([0-9.]*\).*/\1/p' <<<"$1"; }
fails() { sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$1"; }
if [ "$(fails "$Z_OUT")" != 0 ] || [ "$(fails "$T_OUT")" != 0 ]; then
  echo "ratio: INVALID (failed transfers)"
  exit 1
fi
python3 -c "import sys; z,t=float(sys.argv[1]),float(sys.argv[2]); print(f'ratio zerotouch/tftpd-hpa: {z/t:.2f}x (target >= 0.5x)')" "$(rate "$Z_OUT")" "$(rate "$T_OUT")"
